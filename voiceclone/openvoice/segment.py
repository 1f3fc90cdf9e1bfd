"""Exact chunked evaluation of convolution stacks.

A `Segment` is a window `[start, start + length)` of a longer sequence whose full length is `total`, at some
sample rate. Each convolution pads with zeros only at the true ends of the sequence (as the whole-sequence
computation does); inside, it consumes its own context, so the valid window shrinks. Run over a window with
enough context on both sides, a stack of such layers gives the same numbers as the whole-sequence run, which is
what lets the converter stream. When a segment covers the whole sequence every operation below is the same
call the reference makes, so the whole conversion keeps numerical parity.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class Segment:
    """A window of a `[batch, channels, time]` sequence, placed in the whole sequence."""

    x: torch.Tensor
    start: int
    total: int

    @property
    def end(self) -> int:
        """Index just past the window's last step."""
        return self.start + self.x.shape[-1]

    @property
    def at_start(self) -> bool:
        """The window touches the true beginning of the sequence."""
        return self.start == 0

    @property
    def at_end(self) -> bool:
        """The window touches the true end of the sequence."""
        return self.end == self.total

    @classmethod
    def whole(cls, x: torch.Tensor) -> Segment:
        """The whole sequence as one segment."""
        return cls(x, 0, x.shape[-1])

    def with_x(self, x: torch.Tensor) -> Segment:
        """The same window holding other values (an elementwise op was applied)."""
        return Segment(x, self.start, self.total)

    def crop(self, start: int, end: int) -> Segment:
        """The part of this window within `[start, end)`."""
        if start < self.start or end > self.end or start > end:
            raise ValueError(f"cannot crop [{self.start}, {self.end}) to [{start}, {end})")
        return Segment(self.x[..., start - self.start : end - self.start], start, self.total)


def _conv(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int, dilation: int
) -> torch.Tensor:
    # 4-D weights mean the `[N, C, 1, T]` channels-last layout (see `network.Generator.use_channels_last`).
    if weight.ndim == 4:
        return F.conv2d(x, weight, bias, padding=(0, padding), dilation=(1, dilation))
    return F.conv1d(x, weight, bias, padding=padding, dilation=dilation)


def conv1d(seg: Segment, weight: torch.Tensor, bias: torch.Tensor | None, padding: int, dilation: int = 1) -> Segment:
    """A 'same' Conv1d (stride 1, zero padding `padding` each side) evaluated on a window."""
    if seg.at_start and seg.at_end:
        return Segment(_conv(seg.x, weight, bias, padding, dilation), 0, seg.total)
    left = padding if seg.at_start else 0
    right = padding if seg.at_end else 0
    x = F.pad(seg.x, (left, right)) if (left or right) else seg.x
    y = _conv(x, weight, bias, 0, dilation)
    return Segment(y, seg.start + padding - left, seg.total)


def conv_transpose1d(
    seg: Segment, weight: torch.Tensor, bias: torch.Tensor | None, stride: int, padding: int
) -> Segment:
    """A ConvTranspose1d evaluated on a window; output positions short of full input context are cut."""
    kernel = weight.shape[-1]
    total = (seg.total - 1) * stride + kernel - 2 * padding
    whole = seg.at_start and seg.at_end
    if weight.ndim == 4:
        y = F.conv_transpose2d(seg.x, weight, bias, stride=(1, stride), padding=(0, padding if whole else 0))
    else:
        y = F.conv_transpose1d(seg.x, weight, bias, stride=stride, padding=padding if whole else 0)
    if whole:
        return Segment(y, 0, total)
    origin = seg.start * stride - padding  # where y[..., 0] sits in the output sequence
    # Output n takes inputs i with i*stride <= n + padding < i*stride + kernel: without the input just before
    # (or after) the window, the first (or last) positions are incomplete.
    lo = 0 if seg.at_start else (seg.start - 1) * stride + kernel - padding
    hi = total if seg.at_end else seg.end * stride - padding
    return Segment(y[..., lo - origin : hi - origin], lo, total)
