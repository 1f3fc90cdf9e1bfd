"""An inaudible provenance mark on every converted output: Resemble's PerTh, with its model from its wheel.

`resemble-perth` (MIT) ships its trained PerTh network (`perth_net_250000.pth.tar`, 37 MB) inside the wheel, so
marking and detecting need no download; both run on the CPU. The mark is one fixed pattern: every frequency bin
below 2 kHz of the short-time spectrum (2048-point STFT at 32 kHz, 10 ms hop) is raised or lowered by about 2 dB,
shaped by the encoder to what the speech masks. The decoder reads that pattern back and gives a confidence in
[0, 1]; there is no payload.

**How PerTh is loaded**: without torchaudio, by `responsible.perth_loader` (its docstring says why).

**Marking** (`Watermarker.mark`) works on a difference signal: the audio is resampled to 32 kHz (soxr), marked
there, and the difference (the mark alone, below 2 kHz) is resampled back and added to the untouched input. The
output keeps the input's rate, length and everything above 2 kHz. At 32 kHz it equals perth's own
`apply_watermark` to 127 dB. On Piper speech the mark sits 15.5 dB below the speech (SNR of the difference):
PerTh hides it under the speech (its training loss is psychoacoustic) rather than making it small.

**Streaming** (`StreamMarker`): each chunk is marked with 0.25 s of the audio before it as context (the encoder
sees 15 frames either side; frames are aligned to one 32 kHz grid so that every call computes the same frames), and
the last `STREAM_HOLD` (10 ms) of each call is held back and cross-faded with the next call's estimate of it, which
removes the clicks a hard seam makes (without it the seams put broadband clicks 54 dB below full scale). The
resampling on the way in and out is soxr's quick streaming quality (a sample or two of delay; the mark lives below
2 kHz, far inside its clean band). So a first chunk of 2048 samples at 22050 Hz comes out as 1825 samples (10 ms
held back) as soon as it goes in, after 4-9 ms of work; `flush` gives the rest. Streamed and whole marking
differ by a signal 29 dB below the mark itself; detection is the same.

**Detection** is in `responsible.detection` (the verdict on a whole file, and the marked stretches inside it).
The decoder's confidence over a whole clip is called marked at `THRESHOLD` (0.95) on at least
`MIN_RELIABLE_SECONDS` (0.3 s) of audio, chosen from these measurements on Piper and espeak-ng speech
(benchmarks/watermark.py --edits):

- marked speech: 0.99-1.0 from 0.3 s (one-word Piper sentences of 0.5 s: 0.998-1.0); random 0.1-0.2 s excerpts
  of marked speech score 0.04-1.0 and of unmarked speech up to 0.96, hence nothing under 0.3 s is called marked;
- marked, then resampled (8, 16, 44.1 kHz), MP3 (32 kbit/s to default), Ogg Vorbis, Opus, 8-bit PCM, trimmed
  (0.5 s off both ends, or the first 1 s alone), 12 dB quieter, 6 dB louder and clipped, polarity inverted, tempo
  x1.1 with the pitch kept, high-passed at 80 Hz, low-passed at 4 kHz: 1.000 on Piper speech, 0.968-1.0 on
  espeak-ng;
- marked, then degraded: noise at 30 dB SNR 0.996-1.0 (espeak-ng 0.93), at 20 dB 0.98 (espeak-ng 0.60), at 10 dB
  0.34-0.50 (lost); 8 kHz telephone band 0.98 (espeak-ng 0.75); 0.4 s reverberation 1.0 (espeak-ng 0.82); 5%
  faster or 100 cents higher: 0 (the pattern moves in frequency: lost);
- unmarked speech: 0-0.06 for whole sentences and after the edits above, except that removing the lowest bins
  imitates part of the pattern: unmarked Piper speech high-passed at 20-120 Hz scores up to 0.89 (p99 0.81 over
  240 cases), low-passed at 4 kHz 0.38, reverberated 0.31, through Ogg Vorbis 0.22. Hence 0.95 rather than
  PerTh's own 0.5: every edit of marked Piper speech that keeps the pitch (bar heavy noise) stays above it.

Tonal sounds (chords, plucked strings) take almost no mark (0.03-0.11 after marking): it needs speech or noise to
hide under. Digital silence carries no mark and reads as confidence 0. The mark is one public pattern, the same
for every input and every user: anyone with resemble-perth can find it, add it, or (by shifting the pitch) remove
it; it says "probably made by a PerTh-marking tool", not who made it.
"""

from __future__ import annotations

import numpy as np
import soxr
import torch
from torch import nn

from voiceclone.audio.resample import resample
from voiceclone.once import once
from voiceclone.responsible.perth_loader import load_net, perth_modules

MARK_RATE = 32000  # Hz: PerTh's native rate (its hparams.yaml)
STREAM_HOLD = 320  # samples at 32 kHz (10 ms, one STFT hop): held back and cross-faded at each seam
STREAM_CONTEXT = 8000  # samples at 32 kHz (0.25 s) of earlier audio given to the encoder with each chunk
_HOP = 320  # PerTh's STFT hop at 32 kHz
_MIN_SEGMENT = 2048  # the STFT's reflect padding needs more than n_fft / 2 samples: shorter input is padded


# --------------------------------------------------------------------------------------------------- model
@once
def load_model() -> nn.Module:
    """PerTh's network on the CPU, in eval mode: loaded once per process (about 0.3 s) and shared by threads.

    Raises:
        WatermarkUnavailable: resemble-perth is missing or its model file is damaged.
    """
    return load_net()


# ------------------------------------------------------------------------------------------------- marking
def _mono(audio: np.ndarray, sample_rate: int | None = None) -> np.ndarray:
    """`audio` as float32 mono with NaN/inf made finite; a ValueError for more dimensions or a rate below 1."""
    if sample_rate is not None and sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"expected mono audio (one dimension), got shape {samples.shape}")
    return np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)


@torch.inference_mode()
def _mark_delta(net: nn.Module, x32: np.ndarray) -> np.ndarray:
    """The mark alone (marked minus original) for 32 kHz audio, as float32 of the same length."""
    magphase_to_cx = perth_modules().magphase_to_cx
    n = len(x32)
    padded = np.pad(x32, (0, max(0, _MIN_SEGMENT - n)))
    mag, phase = net.ap.signal_to_magphase(torch.from_numpy(np.ascontiguousarray(padded, dtype=np.float32)))
    marked, _mask = net.encoder(mag[None])
    # The inverse STFT is linear: the difference of the two spectra gives the mark alone, so the input itself
    # passes through untouched (no STFT round trip, no resampling of the speech).
    spec = magphase_to_cx(net.hp, marked[0], phase) - magphase_to_cx(net.hp, mag, phase)
    return net.ap.inv_spectrogram(spec, length=len(padded))[:n].numpy().astype(np.float32, copy=False)


class Watermarker:
    """Marks audio with PerTh. The model loads on first use (or `load()`); one instance can serve many threads.

    Attributes:
        sample_rate: the rate the mark is made at (PerTh's 32 kHz); any input rate is resampled inside.
    """

    sample_rate: int = MARK_RATE

    def load(self) -> Watermarker:
        """Load the model and run it once now (about 0.3-0.5 s), so that the first output is not delayed.

        Returns:
            self.

        Raises:
            WatermarkUnavailable: resemble-perth is missing or damaged.
        """
        net = load_model()
        _mark_delta(net, np.zeros(_MIN_SEGMENT, dtype=np.float32))  # first calls allocate: do it off the clock
        return self

    def mark(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """A whole utterance, marked.

        Args:
            audio: mono float samples in [-1, 1], any length (empty gives empty).
            sample_rate: their rate in Hz.

        Returns:
            Float32 samples at `sample_rate`, as long as `audio`, within [-1, 1].

        Raises:
            WatermarkUnavailable: the model cannot be loaded.
            ValueError: `audio` is not one-dimensional or the rate is not positive.
        """
        x = _mono(audio, sample_rate)
        if x.size == 0:
            return x.copy()
        delta = _mark_delta(load_model(), resample(x, int(sample_rate), MARK_RATE))
        delta = resample(delta, MARK_RATE, int(sample_rate))
        delta = np.pad(delta[: x.size], (0, max(0, x.size - delta.size)))
        return np.clip(x + delta, -1.0, 1.0).astype(np.float32, copy=False)

    def stream(self, sample_rate: int) -> StreamMarker:
        """A marker for one stream of chunks (an utterance, a sentence, a whole reply) at `sample_rate` Hz."""
        return StreamMarker(sample_rate)


class StreamMarker:
    """Marks a stream chunk by chunk; one stream, fed from one thread at a time.

    Latency: each `push` returns everything it was given but the last `STREAM_HOLD` samples at 32 kHz (10 ms,
    e.g. 221 samples at 22050 Hz) and the quick resamplers' one or two samples; `flush` returns those. The work per
    push is the chunk plus 0.25 s of context: 4-9 ms for the converter's first 2048-sample chunk on a busy 2-core
    CPU, and a real-time factor of 0.02-0.06 over a whole stream (see benchmarks/watermark.py).
    """

    def __init__(self, sample_rate: int):
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self.sample_rate = int(sample_rate)
        same = self.sample_rate == MARK_RATE
        self._in = None if same else soxr.ResampleStream(self.sample_rate, MARK_RATE, 1, "float32", "QQ")
        self._out = None if same else soxr.ResampleStream(MARK_RATE, self.sample_rate, 1, "float32", "QQ")
        self._buffer = np.zeros(0, dtype=np.float32)  # 32 kHz input kept for context; [0] is absolute `_base`
        self._base = 0
        self._done = 0  # the mark is final up to here (absolute 32 kHz samples)
        self._tail = np.zeros(0, dtype=np.float32)  # the last call's estimate of the mark from `_done` on
        self._pending = np.zeros(0, dtype=np.float32)  # input at `sample_rate` not yet returned
        self._mark = np.zeros(0, dtype=np.float32)  # the final mark at `sample_rate`, not yet added
        self._flushed = False

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Take the next chunk; return the marked audio ready so far (float32 at `sample_rate`, maybe empty).

        Raises:
            ValueError: `chunk` is not one-dimensional, or the stream was flushed.
        """
        x = _mono(chunk)
        if self._flushed:
            raise ValueError("this stream was flushed; start another with Watermarker.stream()")
        self._pending = np.concatenate([self._pending, x])
        self._take(x if self._in is None else self._in.resample_chunk(x))
        return self._emit(self._step(last=False), last=False)

    def flush(self) -> np.ndarray:
        """End the stream: the marked audio still held back (float32 at `sample_rate`, maybe empty)."""
        if self._flushed:
            return np.zeros(0, dtype=np.float32)
        self._flushed = True
        if self._in is not None:
            self._take(self._in.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
        return self._emit(self._step(last=True), last=True)

    def _take(self, x32: np.ndarray) -> None:
        self._buffer = np.concatenate([self._buffer, x32.astype(np.float32, copy=False)])

    def _step(self, last: bool) -> np.ndarray:
        """Mark what has come in; return the mark made final by this call (32 kHz, from `_done` on)."""
        end = self._base + len(self._buffer)
        final = end if last else end - STREAM_HOLD
        if final <= self._done:
            return np.zeros(0, dtype=np.float32)
        # Start on the STFT grid of the whole stream, early enough that the encoder's view of `_done` onwards
        # is complete (15 frames of 320 samples plus the 2048-sample window fit in STREAM_CONTEXT).
        start = max(self._base, (self._done - STREAM_CONTEXT) // _HOP * _HOP)
        delta = _mark_delta(load_model(), self._buffer[start - self._base :])[self._done - start :]
        fade = min(len(self._tail), len(delta))
        if fade:  # a raised-cosine cross-fade from the last call's estimate: no step at the seam
            w = (0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)).astype(np.float32)
            delta[:fade] = (1.0 - w) * self._tail[:fade] + w * delta[:fade]
        count = final - self._done
        out, self._tail = delta[:count], delta[count:].copy()
        self._done = final
        keep = max(self._base, (self._done - STREAM_CONTEXT) // _HOP * _HOP - _HOP)
        self._buffer, self._base = self._buffer[keep - self._base :], keep
        return out

    def _emit(self, delta32: np.ndarray, last: bool) -> np.ndarray:
        """Add the final mark to the input it belongs to; return what is complete."""
        if self._out is not None:
            delta32 = self._out.resample_chunk(delta32, last=last)
        self._mark = np.concatenate([self._mark, delta32])
        count = len(self._pending) if last else min(len(self._pending), len(self._mark))
        if len(self._mark) < count:  # the resampler's rounding at the very end: a sample or two
            self._mark = np.pad(self._mark, (0, count - len(self._mark)))
        out = np.clip(self._pending[:count] + self._mark[:count], -1.0, 1.0).astype(np.float32, copy=False)
        self._pending, self._mark = self._pending[count:], self._mark[count:]
        if last:
            self._mark = np.zeros(0, dtype=np.float32)
        return out
