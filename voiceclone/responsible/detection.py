"""Finding voiceclone's provenance mark (PerTh) in audio: the file's verdict, and the stretches that carry it.

**How the decoder is read**: PerTh's decoder is convolutional over the spectrogram's frames (10 ms each) with a
reach of about 0.2 s, and only at the end takes a masked mean over all frames of three branches and mixes them
with attention. `frame_outputs` runs it once and keeps the per-frame outputs, so that the decoder's verdict on any
window is a mean over that window's frames (cumulative sums: every window of an hour costs one pass). On the whole
input it equals `perth`'s own decoder (tests check it). Of the three branches only the middle ("normal") one moves
in the released model (the other two give the same value on every frame), so its window mean, the **strength**, is
what tells marked from unmarked: about 6 on marked frames and near 0 on unmarked ones.

**The file's verdict** (`Detection.present`) is "contains marked audio": the decoder's own confidence over
windows of up to `WHOLE_WINDOW_S` is at least `THRESHOLD` on `MIN_RELIABLE_SECONDS` or more of audio (a clip or
a whole file that is marked), or any **stretch** was found.

**Stretches**: windows of `SCALES` (1 s and 2 s) slide in steps of `HOP_S`; a window whose strength reaches its
scale's threshold is marked, and overlapping marked windows join into one stretch (start, end, confidence = the
best window's strength over `FULL_STRENGTH`, at most 1). The 1 s threshold is high because one second is too
little for PerTh to be sure: unmarked speech after some edits (Piper's voice high-passed at 40-120 Hz, espeak-ng
through a random 0.4 s reverberation) has single seconds as strong as 5.0, and two seconds up to 3.9, while marked
speech gives 4.6-6.2 over any second (before edits). Figures and the false-alarm count: benchmarks/watermark.py
`--splices` and the README.

**Memory** stays bounded by the file's length in frames, not its samples: `detect_file` reads, resamples and
decodes `BLOCK_S` at a time with `CONTEXT_S` of audio either side, and keeps 7 numbers per 10 ms frame (about 10 MB
for an hour).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from voiceclone.audio.reader import AudioReader
from voiceclone.audio.resample import resample_blocks
from voiceclone.responsible.perth_loader import perth_modules
from voiceclone.responsible.watermark import MARK_RATE, load_model

THRESHOLD = 0.95  # the decoder's own confidence at or above which a clip or file is marked (see watermark.py)
MIN_RELIABLE_SECONDS = 0.3  # shorter audio gives unreliable confidences either way: never called present
WHOLE_WINDOW_S = 30.0  # the file's confidence is the best of equal windows of at most this length
FULL_STRENGTH = 6.0  # a cleanly marked window's strength (Piper speech: 6.1; espeak-ng: 5.3-6.1)
SCALES = ((1.0, 5.5), (2.0, 4.5))  # (window seconds, the strength that marks it); see the module docstring
HOP_S = 0.1  # windows slide by this much
EDGE_S = 0.2  # a stretch's ends are placed by the strength over this much audio
MIN_FRAME_SHARE = 0.25  # a window needs this share of frames above PerTh's loudness mask to be judged at all
BLOCK_S = 20.0  # seconds of audio decoded at a time
CONTEXT_S = 0.5  # seconds either side of a block given to the network (its reach is about 0.2 s)
_HOP = 320  # PerTh's STFT hop at 32 kHz: one frame per 10 ms
_FRAMES_PER_S = MARK_RATE / _HOP
_MIN_SEGMENT = 2048  # the STFT's reflect padding needs more than n_fft / 2 samples


@dataclass(frozen=True)
class Stretch:
    """A stretch of audio that carries the mark: `start` and `end` in seconds, `confidence` in [0, 1]."""

    start: float
    end: float
    confidence: float

    def to_dict(self) -> dict:
        return {"start": round(self.start, 2), "end": round(self.end, 2), "confidence": round(self.confidence, 3)}


@dataclass(frozen=True)
class Detection:
    """The verdict on one piece of audio.

    Fields:
        present: the audio contains marked audio (the whole of it, or a stretch; see the module docstring).
        confidence: the best of the decoder's confidence over the whole and the stretches' confidences, in [0, 1].
        seconds: how much audio was examined.
        stretches: where the mark was found (empty when nowhere for a second or more).
    """

    present: bool
    confidence: float
    seconds: float
    stretches: tuple[Stretch, ...] = field(default=())

    def to_dict(self) -> dict:
        """JSON-ready fields (confidence rounded to 4 places, stretches as a list of dicts)."""
        out = asdict(self)
        out["confidence"] = round(self.confidence, 4)
        out["seconds"] = round(self.seconds, 3)
        out["stretches"] = [s.to_dict() for s in self.stretches]
        out["too_short"] = self.seconds < MIN_RELIABLE_SECONDS  # "absent" then means "cannot tell"
        return out


@dataclass
class FrameOutputs:
    """The decoder's per-frame outputs: `mask` (T,) 1 where PerTh judges a frame, `attn` and `marks` (3, T)."""

    mask: np.ndarray
    attn: np.ndarray
    marks: np.ndarray

    def __len__(self) -> int:
        return len(self.mask)

    def cut(self, a: int, b: int) -> FrameOutputs:
        return FrameOutputs(self.mask[a:b], self.attn[:, a:b], self.marks[:, a:b])

    @staticmethod
    def join(parts: list[FrameOutputs]) -> FrameOutputs:
        return FrameOutputs(
            np.concatenate([p.mask for p in parts]),
            np.concatenate([p.attn for p in parts], axis=1),
            np.concatenate([p.marks for p in parts], axis=1),
        )


# -------------------------------------------------------------------------------------------- the network
@torch.inference_mode()
def frame_outputs(net: nn.Module, x32: np.ndarray) -> FrameOutputs:
    """PerTh's decoder on 32 kHz audio, stopped before its mean over frames: one output per 10 ms frame.

    The slow and fast branches work on the frames stretched by 1.25 and 0.75; their outputs are stretched back
    onto the frame grid (linear, as the decoder stretches its input) so that every branch has one value a frame.
    """
    padded = np.pad(np.asarray(x32, dtype=np.float32), (0, max(0, _MIN_SEGMENT - len(x32))))
    mag, _ = net.ap.signal_to_magphase(torch.from_numpy(np.ascontiguousarray(padded)))
    mag = mag[None]
    decoder = net.decoder
    mask = perth_modules().magmask(mag)[0]
    subband = mag[:, : decoder.subband]
    frames = subband.shape[2]
    outputs = []
    for layers, scale in ((decoder.slow_layers, 1.25), (decoder.normal_layers, 1.0), (decoder.fast_layers, 0.75)):
        x = subband if scale == 1.0 else F.interpolate(subband, int(frames * scale), mode="linear", align_corners=True)
        y = layers(x)
        if scale != 1.0:
            y = F.interpolate(y, frames, mode="linear", align_corners=True)
        outputs.append(y[0])
    stacked = torch.stack(outputs).numpy()  # (3 branches, 2: attention and mark, frames)
    return FrameOutputs(mask.numpy().astype(np.float32), stacked[:, 0].copy(), stacked[:, 1].copy())


def frames_of_blocks(blocks: Iterable[np.ndarray], net: nn.Module | None = None) -> FrameOutputs:
    """`frame_outputs` of a long 32 kHz stream given in blocks, `BLOCK_S` at a time with `CONTEXT_S` either side.

    Each block's frames come from a pass over the block with its context, so they equal a pass over the whole
    stream (the network's reach is well inside the context) except for PerTh's loudness mask, which is relative
    to the loudest frame of the pass, i.e. of its 21 s.
    """
    net = net or load_model()
    block, context = int(BLOCK_S * MARK_RATE) // _HOP * _HOP, int(CONTEXT_S * MARK_RATE) // _HOP * _HOP
    parts: list[FrameOutputs] = []
    buffer = np.zeros(0, dtype=np.float32)
    base = 0  # absolute sample of buffer[0]
    done = 0  # frames are final before this absolute sample (a multiple of _HOP)
    for piece in blocks:
        buffer = np.concatenate([buffer, np.clip(np.asarray(piece, dtype=np.float32), -1.0, 1.0)])
        while base + len(buffer) >= done + block + context:
            parts.append(_frames_between(net, buffer, base, done, done + block))
            done += block
            keep = max(base, done - context)
            buffer, base = buffer[keep - base :], keep
    end = base + len(buffer)
    if end > done or not parts:
        parts.append(_frames_between(net, buffer, base, done, end, last=True))
    return FrameOutputs.join(parts)


def _frames_between(net, buffer: np.ndarray, base: int, a: int, b: int, last: bool = False) -> FrameOutputs:
    """The frames whose centres lie in absolute samples [a, b), from a pass over them with context."""
    start = max(base, a - int(CONTEXT_S * MARK_RATE) // _HOP * _HOP)
    stop = min(base + len(buffer), b + int(CONTEXT_S * MARK_RATE))
    outputs = frame_outputs(net, buffer[start - base : stop - base])
    first = (a - start) // _HOP  # frame j of a centred STFT is centred on sample start + j * _HOP
    count = (b - a) // _HOP + (1 if last else 0)  # a centred STFT of n samples has n // _HOP + 1 frames
    return outputs.cut(first, first + count)


# --------------------------------------------------------------------------------------------- the verdict
def window_confidence(outputs: FrameOutputs, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The decoder's own confidence on each window [start, end) of frames, in [0, 1]; 0 where nothing is loud."""
    mask = outputs.mask.astype(np.float64)
    counts = _window_sums(mask, starts, ends)
    attn = np.stack([_window_sums(outputs.attn[i] * mask, starts, ends) for i in range(3)]) / np.maximum(counts, 1)
    marks = np.stack([_window_sums(outputs.marks[i] * mask, starts, ends) for i in range(3)]) / np.maximum(counts, 1)
    weights = np.exp(attn - attn.max(axis=0))
    weights /= weights.sum(axis=0)
    confidence = np.clip((weights * marks).sum(axis=0), 0.0, 1.0)
    confidence[counts <= 0] = 0.0
    return confidence


def window_strength(outputs: FrameOutputs, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the normal branch's mean over each window's loud frames, the share of the window's frames that are loud)."""
    mask = outputs.mask.astype(np.float64)
    counts = _window_sums(mask, starts, ends)
    strength = _window_sums(outputs.marks[1] * mask, starts, ends) / np.maximum(counts, 1)
    return np.where(counts > 0, strength, 0.0), counts / np.maximum(ends - starts, 1)


def judge(outputs: FrameOutputs, seconds: float) -> Detection:
    """The verdict and the marked stretches from a whole input's per-frame outputs (`seconds` long)."""
    total = len(outputs)
    if total == 0 or seconds <= 0:
        return Detection(False, 0.0, max(0.0, seconds))
    windows = max(1, math.ceil(total / (WHOLE_WINDOW_S * _FRAMES_PER_S)))
    edges = np.linspace(0, total, windows + 1).astype(int)
    whole = float(window_confidence(outputs, edges[:-1], edges[1:]).max())
    whole_present = whole >= THRESHOLD and seconds >= MIN_RELIABLE_SECONDS
    stretches = find_stretches(outputs)
    best = max([whole, *(s.confidence for s in stretches)])
    return Detection(whole_present or bool(stretches), best, seconds, tuple(stretches))


def find_stretches(outputs: FrameOutputs) -> list[Stretch]:
    """Marked stretches: windows of each of `SCALES` at or above its strength, overlapping ones joined."""
    total = len(outputs)
    hop = max(1, round(HOP_S * _FRAMES_PER_S))
    spans: list[tuple[int, int, float]] = []
    for window_s, needed in SCALES:
        width = round(window_s * _FRAMES_PER_S)
        if total < width:
            continue
        starts = np.arange(0, total - width + 1, hop)
        if starts[-1] != total - width:
            starts = np.append(starts, total - width)  # the last window ends with the audio
        strength, share = window_strength(outputs, starts, starts + width)
        for i in np.flatnonzero((strength >= needed) & (share >= MIN_FRAME_SHARE)):
            spans.append((int(starts[i]), int(starts[i] + width), float(strength[i])))
    spans.sort()
    joined: list[list] = []
    for a, b, value in spans:
        if joined and a <= joined[-1][1]:
            joined[-1][1] = max(joined[-1][1], b)
            joined[-1][2] = max(joined[-1][2], value)
        else:
            joined.append([a, b, value])
    stretches = []
    for a, b, value in joined:
        a, b = _trimmed(outputs, a, min(b, total))
        stretches.append(Stretch(a / _FRAMES_PER_S, b / _FRAMES_PER_S, min(1.0, value / FULL_STRENGTH)))
    return stretches


def _trimmed(outputs: FrameOutputs, a: int, b: int) -> tuple[int, int]:
    """[a, b) without the unmarked frames at its ends: a 2 s window that found a 1.5 s clone reaches past it.

    The ends move in to the first and last frame where the mean strength of the loud frames within `EDGE_S`
    reaches half of `FULL_STRENGTH`; where no frame does, [a, b) is kept.
    """
    mask = outputs.mask[a:b].astype(np.float64)
    width = max(1, round(EDGE_S * _FRAMES_PER_S))
    kernel = np.ones(width)
    loud = np.convolve(mask, kernel, mode="same")
    strength = np.convolve(outputs.marks[1, a:b] * mask, kernel, mode="same") / np.maximum(loud, 1)
    on = np.flatnonzero((loud > 0) & (strength >= FULL_STRENGTH / 2))
    if on.size == 0:
        return a, b
    return a + int(on[0]), a + int(on[-1]) + 1


def _window_sums(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    cumulative = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    return cumulative[ends] - cumulative[starts]


# ----------------------------------------------------------------------------------------------- the API
def detect(audio: np.ndarray, sample_rate: int) -> Detection:
    """Is the mark in `audio`, and where?

    Args:
        audio: mono float samples, any length.
        sample_rate: their rate in Hz (any: resampled to 32 kHz).

    Returns:
        A `Detection`.

    Raises:
        WatermarkUnavailable: the model cannot be loaded.
        ValueError: `audio` is not one-dimensional or the rate is not positive.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"expected mono audio (one dimension), got shape {samples.shape}")
    samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    if samples.size == 0:
        return Detection(False, 0.0, 0.0)
    blocks = (samples[i : i + int(BLOCK_S * sample_rate)] for i in range(0, samples.size, int(BLOCK_S * sample_rate)))
    outputs = frames_of_blocks(resample_blocks(blocks, int(sample_rate), MARK_RATE))
    return judge(outputs, samples.size / sample_rate)


def detect_file(path: str | Path) -> Detection:
    """`detect` on an audio file (WAV, FLAC, OGG or MP3; stereo is mixed down), read a block at a time.

    Raises:
        AudioError: the file is missing or not readable audio (a `UserError`, one line naming the file).
        WatermarkUnavailable: the model cannot be loaded.
    """
    with AudioReader(path) as reader:
        rate = reader.sample_rate
        counted = [0]

        def counting(blocks):
            for block in blocks:
                counted[0] += len(block)
                yield block

        outputs = frames_of_blocks(resample_blocks(counting(reader.blocks()), rate, MARK_RATE))
    return judge(outputs, counted[0] / rate)
