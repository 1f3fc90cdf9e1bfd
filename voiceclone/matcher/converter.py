"""The voice matcher: WORLD analysis, the profile mapping, WORLD resynthesis, block by block.

Streaming. The input is cut into blocks on a frame grid (the first one short, so that audio comes out early).
Each block is analysed with ANALYSIS_CONTEXT_S of signal on both sides, so its frames are what an analysis of the
whole input would give, then transformed (each frame with a few neighbours from that analysis, no state), then
synthesised with some frames of context.
Two syntheses only join without a click if their glottal pulses fall on the same samples: WORLD places a pulse
wherever the F0 phase accumulated since its first sample wraps. Every block after the first therefore starts with
a few silent lead-in frames whose F0 is solved so that, where the real frames begin, the accumulated phase equals
that of the previous block's synthesis at the same sample; from there on both syntheses place the same pulses.
The blocks' outputs then differ only in the random noise of the aperiodic part, and a 4 ms crossfade joins them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from voiceclone.matcher.mapping import FrameTransform, Mapping
from voiceclone.matcher.profile import VoiceProfile
from voiceclone.matcher.vocoder import pyworld
from voiceclone.matcher.world import FRAME_PERIOD_MS, MAX_RATE, MIN_RATE, analyze, fft_size, total_phase

DEFAULT_FIRST_CHUNK_S = 0.2  # the first chunk: short, so that playback starts after little work
DEFAULT_CHUNK_S = 1.0  # later chunks: long, since each block pays for its analysis context
MIN_BLOCK_S = 0.08  # a block must hold the next block's left synthesis context plus the lead-in
ANALYSIS_CONTEXT_S = 0.06  # YIN, CheapTrick and StoneMask windows reach at most ~25 ms from a frame; the transform's
# context frames (30 ms) lie inside it, so they too are analysed with their whole windows
SYNTH_LEFT_S = 0.04  # real frames synthesised before a block: a pulse response reaches fft_size / 2 (23 ms) back
SYNTH_RIGHT_S = 0.02  # frames synthesised past a block's end, for the crossfade with the next block
LEAD_IN_S = 0.02  # silent frames whose F0 sets the pulse phase; at 100-150 Hz they span a whole cycle
CROSSFADE_S = 0.004
LEAD_IN_LEVEL = 1e-8  # the lead-in's envelope relative to the first real frame's: -80 dB, inaudible
AP_EVERY = 4  # D4C on every 4th frame (20 ms), interpolated: aperiodicity moves slowly; D4C is the costliest step
REFINE_F0 = False  # StoneMask would cost a tenth of the time for a < 0.2 % F0 refinement nobody hears
LIMIT_START = 0.9  # a sample beyond this magnitude is compressed smoothly towards 1.0 (never clips)


@dataclass
class _Block:
    """The synthesis of one block and what the next block needs from it."""

    start: int  # global sample index of the synthesis's first sample
    audio: np.ndarray  # the synthesis
    phase: np.ndarray  # its accumulated pulse phase per sample
    f0: np.ndarray  # its converted frames [first own frame - left context, end + right context)
    sp: np.ndarray
    ap: np.ndarray
    first_frame: int  # global index of row 0 of f0/sp/ap


class VoiceMatcher:
    """Converts speech of a source voice towards a target voice, given both voices' profiles. Needs no weights.

    Cheap to construct and stateless between calls: the profiles are passed to every call.
    """

    def __init__(self, sampling_rate: int = 22050):
        """
        Args:
            sampling_rate: Rate of the audio to convert and of the output, Hz (16000 to 48000).

        Raises:
            ValueError: A rate outside that range.
        """
        if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, np.integer)):
            raise ValueError(f"sampling_rate must be an integer, got {sampling_rate!r}")
        if not MIN_RATE <= sampling_rate <= MAX_RATE:
            raise ValueError(f"sampling_rate must be between {MIN_RATE} and {MAX_RATE} Hz, got {sampling_rate}")
        self.sampling_rate = int(sampling_rate)
        hop = Fraction(self.sampling_rate) * Fraction(FRAME_PERIOD_MS) / 1000
        self._hop = hop  # samples per frame, possibly fractional (110.25 at 22050 Hz)
        self._grid = hop.denominator  # block edges fall on multiples of this many frames: whole samples
        self._fft = fft_size(self.sampling_rate)

    def convert(
        self, audio: np.ndarray, source: VoiceProfile, target: VoiceProfile, sample_rate: int | None = None
    ) -> np.ndarray:
        """Convert a whole utterance (the same procedure as `convert_stream` with its default chunks, joined).

        Args:
            audio: Float mono speech in the source voice at `sampling_rate`, values in [-1, 1].
            source: Profile of the voice speaking `audio` (the base voice).
            target: Profile of the voice to sound like.
            sample_rate: The rate of `audio` if the caller wants it checked; must equal `sampling_rate`.

        Returns:
            Float32 speech at `sampling_rate`, as long as `audio`, within [-1, 1].

        Raises:
            ValueError: Audio that is not 1-D, holds NaN or infinity, or is at another sample rate.
        """
        chunks = list(self.convert_stream(audio, source, target, sample_rate=sample_rate))
        return np.concatenate(chunks).astype(np.float32, copy=False)

    def convert_stream(
        self,
        audio: np.ndarray,
        source: VoiceProfile,
        target: VoiceProfile,
        first_chunk_s: float = DEFAULT_FIRST_CHUNK_S,
        chunk_s: float = DEFAULT_CHUNK_S,
        sample_rate: int | None = None,
    ) -> Iterator[np.ndarray]:
        """Convert an utterance block by block, yielding each block's audio as soon as it is made.

        Args:
            audio: As for `convert`.
            source: As for `convert`.
            target: As for `convert`.
            first_chunk_s: Length of the first chunk in seconds (>= MIN_BLOCK_S; rounded to the frame grid): the
                first audio comes after analysing and synthesising about this much plus context.
            chunk_s: Length of later chunks in seconds (>= MIN_BLOCK_S).
            sample_rate: As for `convert`.

        Yields:
            Float32 chunks at `sampling_rate`; joined, exactly as long as `audio`. An empty input yields one empty
            chunk.

        Raises:
            ValueError: As for `convert`, or chunk lengths below MIN_BLOCK_S. Raised at the call, before any work.
        """
        x = self._check_audio(audio, sample_rate)
        _check_profiles(source, target)
        for name, value in (("first_chunk_s", first_chunk_s), ("chunk_s", chunk_s)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= MIN_BLOCK_S):
                raise ValueError(f"{name} must be at least {MIN_BLOCK_S} s, got {value!r}")
        return self._stream(x, source, target, first_chunk_s, chunk_s)

    # -- internals ---------------------------------------------------------------------------------------------

    def _check_audio(self, audio: np.ndarray, sample_rate: int | None) -> np.ndarray:
        if sample_rate is not None and sample_rate != self.sampling_rate:
            raise ValueError(
                f"audio at {sample_rate} Hz given to a matcher at {self.sampling_rate} Hz: resample it first"
            )
        x = np.asarray(audio)
        if x.ndim != 1:
            raise ValueError(f"audio must be mono (1-D), got shape {x.shape}")
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"audio must be floating point in [-1, 1], got {x.dtype}")
        if not np.all(np.isfinite(x)):
            raise ValueError("audio holds NaN or infinite samples")
        return x.astype(np.float64)

    def _frames(self, seconds: float) -> int:
        """`seconds` as a whole number of grid steps, in frames (at least one step)."""
        steps = max(1, round(seconds * 1000.0 / FRAME_PERIOD_MS / self._grid))
        return steps * self._grid

    def _sample(self, frame: int) -> int:
        """The sample index of a frame on the grid (exact for multiples of the grid)."""
        return int(frame * self._hop)

    def _edges(self, n_samples: int, first_chunk_s: float, chunk_s: float) -> list[int]:
        """Block edges in frames: 0, then grid-aligned steps; the last entry covers `n_samples`."""
        end = int(math.ceil(n_samples / self._hop))
        edges = [0]
        step = self._frames(first_chunk_s)
        while edges[-1] + step < end:
            edges.append(edges[-1] + step)
            step = self._frames(chunk_s)
        if len(edges) > 1 and end - edges[-1] < self._frames(MIN_BLOCK_S):
            edges.pop()  # a sliver at the end joins the block before it
        edges.append(max(end, edges[-1] + 1))
        return edges

    def _stream(
        self, x: np.ndarray, source: VoiceProfile, target: VoiceProfile, first_chunk_s: float, chunk_s: float
    ) -> Iterator[np.ndarray]:
        n = len(x)
        if n == 0:
            yield np.zeros(0, dtype=np.float32)
            return
        transform = Mapping.between(source, target).for_rate(self.sampling_rate, self._fft // 2 + 1)
        ctx, left, right = (self._frames(s) for s in (ANALYSIS_CONTEXT_S, SYNTH_LEFT_S, SYNTH_RIGHT_S))
        edges = self._edges(n, first_chunk_s, chunk_s)
        # Zeros after the end give the last block its right contexts.
        padded = np.concatenate([x, np.zeros(self._sample(right + transform.context_frames + ctx + self._grid) + 1)])
        fade = max(2, round(CROSSFADE_S * self.sampling_rate) // 2 * 2)
        half = fade // 2
        prev: _Block | None = None
        tail = np.zeros(0)
        for k in range(len(edges) - 1):
            a, b = edges[k], edges[k + 1]
            f0, sp, ap = self._own_frames(padded, a, b + right, ctx, source.f0_median_hz, transform)
            block = self._synthesize(prev, a, f0, sp, ap, left)
            start = 0 if k == 0 else self._sample(a) - half
            stop = n if k == len(edges) - 2 else self._sample(b) - half
            out = block.audio[start - block.start : stop - block.start].copy()
            if k > 0:
                ramp = (np.arange(fade) + 0.5) / fade
                out[:fade] = tail * (1.0 - ramp) + out[:fade] * ramp
            if k < len(edges) - 2:
                tail = block.audio[stop - block.start : stop + fade - block.start]
            prev = block
            yield _limit(out).astype(np.float32)

    def _own_frames(
        self, padded: np.ndarray, a: int, b: int, ctx: int, center_hz: float, transform: FrameTransform
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Converted frames [a, b), analysed with `ctx` frames of signal on either side and transformed with the
        frames the transform looks at around them (`context_frames`, within the left analysis context)."""
        first = max(a - ctx, 0)
        extra = transform.context_frames
        lo = self._sample(first)
        hi = min(self._sample(b + extra + ctx) + 1, len(padded))
        analysis = analyze(
            padded[lo:hi],
            self.sampling_rate,
            n_frames=b + extra - first,
            ap_every=AP_EVERY,
            center_hz=center_hz,
            refine_f0=REFINE_F0,
        )
        start = max(a - extra, first)
        rows = analysis.rows(start - first, b + extra - first)
        f0, sp, ap = transform.apply(rows.f0, rows.sp, rows.ap)
        own = slice(a - start, b - start)
        return f0[own], sp[own], ap[own]

    def _synthesize(
        self, prev: _Block | None, a: int, f0: np.ndarray, sp: np.ndarray, ap: np.ndarray, left: int
    ) -> _Block:
        """Synthesise a block's frames (own frames from `a`), pulse-aligned with the previous block."""
        if prev is None:
            audio = pyworld.synthesize(f0, sp, ap, self.sampling_rate, FRAME_PERIOD_MS)
            return _Block(0, audio, total_phase(f0, self.sampling_rate, len(audio)), f0, sp, ap, a)
        # The previous block's frames before `a` are the ones it synthesised: the same pulses, the same shape.
        ctx = slice(a - left - prev.first_frame, a - prev.first_frame)
        f0 = np.concatenate([prev.f0[ctx], f0])
        sp = np.concatenate([prev.sp[ctx], sp])
        ap = np.concatenate([prev.ap[ctx], ap])
        lead = self._frames(LEAD_IN_S)
        start_frame = a - left - lead
        start = self._sample(start_frame)
        align_at = self._sample(a - left) - start  # local sample where the real frames begin
        want = prev.phase[align_at + start - prev.start]
        f0_all = np.concatenate([np.full(lead, _lead_in_f0(f0, lead, align_at, want, self.sampling_rate)), f0])
        sp_all = np.concatenate([np.repeat(sp[:1] * LEAD_IN_LEVEL, lead, axis=0), sp])
        ap_all = np.concatenate([np.repeat(ap[:1], lead, axis=0), ap])
        audio = pyworld.synthesize(f0_all, sp_all, ap_all, self.sampling_rate, FRAME_PERIOD_MS)
        phase = total_phase(f0_all, self.sampling_rate, len(audio))
        return _Block(start, audio, phase, f0, sp, ap, a - left)


def _lead_in_f0(f0: np.ndarray, lead: int, align_at: int, want: float, fs: int) -> float:
    """The lead-in F0 (Hz) that makes the synthesis's accumulated phase at sample `align_at` equal `want` mod 2 pi.

    The phase there is linear in the lead-in F0 (WORLD interpolates F0 linearly and the lead-in is voiced whatever
    its value), so two evaluations give the line, and the answer is the lowest F0 from 100 Hz that lands on it.
    """

    def phase_at(value: float) -> float:
        frames = np.concatenate([np.full(lead, value), f0[:2]])
        return float(total_phase(frames, fs, align_at + 1)[align_at])

    base = phase_at(100.0)
    slope = (phase_at(200.0) - base) / 100.0
    return 100.0 + float(np.mod(want - base, 2.0 * np.pi)) / slope


def _limit(y: np.ndarray) -> np.ndarray:
    """Sample-wise soft limiter: identity up to LIMIT_START, then a tanh knee that never reaches 1."""
    mag = np.abs(y)
    over = mag > LIMIT_START
    if not np.any(over):
        return y
    room = 1.0 - LIMIT_START
    squashed = LIMIT_START + room * np.tanh((mag - LIMIT_START) / room)
    return np.where(over, np.sign(y) * squashed, y)


def _check_profiles(source: object, target: object) -> None:
    for name, value in (("source", source), ("target", target)):
        if not isinstance(value, VoiceProfile):
            raise TypeError(f"{name} must be a VoiceProfile, got {type(value).__name__}")
