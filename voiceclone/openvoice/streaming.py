"""Incremental, exact evaluation of a graph of convolutional stages, for streaming conversion.

Each `Stage` computes its output block by block. Asked for more, it reads from its sources only the input
it needs (its own context around the new block), computes just the new positions and keeps them; sources
drop what no consumer can ask for any more. Every position of every layer is computed once, so streaming
costs about what the whole conversion costs, however small the blocks, and memory stays bounded.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence

import torch

from voiceclone.openvoice.segment import Segment


class Node:
    """A sequence that is produced left to right; consumers read windows of it."""

    total: int
    ready: int

    def __init__(self, total: int):
        self.total = total
        self.ready = 0
        self.target = 0  # how far consumers have asked this node to go in the current round
        # Weak: consumers hold their sources, not the other way round, so a finished graph is freed at once
        # (a reference cycle would keep every buffer until the garbage collector happens to run).
        self.consumers: weakref.WeakSet[Stage] = weakref.WeakSet()
        self._buf: torch.Tensor | None = None
        self._base = 0  # the index of `_buf[..., 0]`

    def ensure(self, until: int) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def demand(self, until: int) -> None:
        """Note that a consumer will need output up to `until` (nothing to do for a ready sequence)."""

    def window(self, lo: int, hi: int) -> Segment:
        """Steps `[lo, hi)` (clamped to the sequence), computing what is missing."""
        lo, hi = max(0, lo), min(self.total, hi)
        # Demand first, so that a stage read by several consumers computes once, up to the furthest need,
        # instead of once per consumer in ever smaller blocks.
        self.demand(hi)
        self.ensure(hi)
        assert self._buf is not None and lo >= self._base, "window requested below what was kept"
        return Segment(self._buf[..., lo - self._base : hi - self._base], lo, self.total)

    def _append(self, x: torch.Tensor) -> None:
        self._buf = x if self._buf is None else torch.cat([self._buf, x], dim=-1)

    def _trim(self) -> None:
        if not self.consumers or self._buf is None:
            return
        floor = min(c.lowest_request(self) for c in self.consumers)
        if floor > self._base:
            drop = min(floor, self.ready) - self._base
            self._buf = self._buf[..., drop:]
            self._base += drop


class Source(Node):
    """A sequence known whole from the start (the spectrogram)."""

    def __init__(self, x: torch.Tensor):
        super().__init__(x.shape[-1])
        self._buf = x
        self.ready = self.total

    def ensure(self, until: int) -> None:
        """Everything is ready."""


class Stage(Node):
    """Output position n of a same-rate stage depends on inputs [n - context, n + context] of each source."""

    def __init__(self, fn: Callable[..., Segment], sources: Sequence[Node], context: int = 0):
        super().__init__(sources[0].total)
        self.fn = fn
        self.sources = list(sources)
        self.context = context
        for src in self.sources:
            src.consumers.add(self)

    def input_range(self, a: int, b: int) -> tuple[int, int]:
        """Input window needed for output `[a, b)`."""
        return a - self.context, b + self.context

    def lowest_request(self, source: Node) -> int:
        """The lowest input index this stage can still ask of `source`."""
        return self.input_range(self.ready, self.ready + 1)[0]

    def demand(self, until: int) -> None:
        """Raise this stage's target and, through its input ranges, its sources' targets."""
        until = min(until, self.total)
        if until <= self.target:
            return
        self.target = until
        hi = self.input_range(self.ready, until)[1]
        for src in self.sources:
            src.demand(hi)

    def ensure(self, until: int) -> None:
        """Compute the output up to `until` or the demanded target, whichever is further."""
        until = min(max(until, self.target), self.total)
        if until <= self.ready:
            return
        lo, hi = self.input_range(self.ready, until)
        out = self.fn(*(src.window(lo, hi) for src in self.sources)).crop(self.ready, until)
        self._append(out.x)
        self.ready = until
        for src in self.sources:
            src._trim()


class UpsampleStage(Stage):
    """A transposed convolution (stride `rate`, `kernel`, `padding`) followed by whatever `fn` does."""

    def __init__(self, fn: Callable[[Segment], Segment], source: Node, rate: int, kernel: int, padding: int):
        super().__init__(fn, [source])
        self.rate, self.kernel, self.padding = rate, kernel, padding
        self.total = (source.total - 1) * rate + kernel - 2 * padding

    def input_range(self, a: int, b: int) -> tuple[int, int]:
        """Output n takes inputs i with i * rate <= n + padding < i * rate + kernel."""
        u, k, p = self.rate, self.kernel, self.padding
        return math.ceil((a + p - k + 1) / u), (b - 1 + p) // u + 1
