"""Incremental, exact evaluation of a chain of sequence stages (posterior encoder, flow, reverse flow).

Each stage keeps what it has already computed and, asked for more, reads only its own context from the stage
before it. Recomputing the whole chain over its total context for every block would cost three times as
much for the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .segment import Segment


class Source:
    """A sequence that is known whole from the start (the spectrogram)."""

    def __init__(self, x: torch.Tensor):
        self.x = x
        self.total = x.shape[-1]

    def window(self, lo: int, hi: int) -> Segment:
        """Steps `[lo, hi)` as a segment."""
        return Segment(self.x[..., lo:hi], lo, self.total)


class Stage:
    """A stage whose output is computed block by block, each block exact given `context` steps of input."""

    def __init__(self, fn: Callable[[Segment], Segment], context: int, source: "Source | Stage"):
        self.fn = fn
        self.context = context
        self.source = source
        self.total = source.total
        self.ready = 0  # output is known on [0, ready)
        self._parts: list[torch.Tensor] = []

    def ensure(self, until: int) -> None:
        """Compute the output up to step `until` (clamped to the sequence)."""
        until = min(until, self.total)
        if until <= self.ready:
            return
        lo, hi = max(0, self.ready - self.context), min(self.total, until + self.context)
        out = self.fn(self.source.window(lo, hi)).crop(self.ready, until)
        self._parts.append(out.x)
        self.ready = until

    def window(self, lo: int, hi: int) -> Segment:
        """Output steps `[lo, hi)`, computing what is missing."""
        self.ensure(hi)
        if len(self._parts) > 1:
            self._parts = [torch.cat(self._parts, dim=-1)]
        return Segment(self._parts[0][..., lo:hi], lo, self.total)
