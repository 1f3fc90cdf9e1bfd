"""Speaking text as the audio is made: every chunk of every sentence to the sinks at once, and the timing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import soxr

from voiceclone.speak.sinks import OutputError


@dataclass
class SpeakStats:
    """What a user sees at the end: how soon the first sound came and how fast the rest."""

    first_audio_s: float | None
    audio_s: float
    elapsed_s: float
    sentences: int

    @property
    def real_time_factor(self) -> float:
        """Seconds of work per second of audio (below 1 is faster than real time)."""
        return self.elapsed_s / self.audio_s if self.audio_s else float("nan")


def speak_to(
    sentences: Iterable[str],
    source: Callable[[str], Iterator[np.ndarray]],
    source_rate: int,
    sinks: list,
    out_rate: int,
    clock: Callable[[], float] = time.perf_counter,
    report: Callable[[str], None] | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> SpeakStats:
    """Feed every chunk of every sentence to the sinks as it is made, resampled to `out_rate`.

    `report`, when given, receives one line per sentence (when its first audio came, how much it made);
    `progress` receives (sentences done, seconds of audio made) after each sentence.
    """
    resampler = soxr.ResampleStream(source_rate, out_rate, 1, dtype="float32") if source_rate != out_rate else None
    start = clock()
    first: float | None = None
    samples = 0
    count = 0
    complete = False
    elapsed = 0.0
    try:
        for sentence in sentences:
            count += 1
            began, sentence_first, sentence_samples, chunks = clock(), None, 0, 0
            for chunk in source(sentence):
                out = resampler.resample_chunk(chunk) if resampler else chunk
                if len(out) == 0:
                    continue
                if first is None:
                    first = clock() - start
                if sentence_first is None:
                    sentence_first = clock() - began
                for sink in sinks:
                    sink.write(out)
                samples += len(out)
                sentence_samples += len(out)
                chunks += 1
            if report is not None:
                took = clock() - began
                report(
                    f"sentence {count}: {sentence_samples / out_rate:.2f} s of audio in {chunks} chunks, first after "
                    f"{(sentence_first or 0) * 1000:.0f} ms, all after {took * 1000:.0f} ms: {sentence[:60]!r}"
                )
            if progress is not None:
                progress(count, samples / out_rate)
        if resampler:
            tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if len(tail):
                for sink in sinks:
                    sink.write(tail)
                samples += len(tail)
        if samples == 0:  # e.g. "...": no file that holds nothing, no "real-time factor nan"
            raise OutputError("nothing was spoken: the text has no words the voice can say")
        elapsed = clock() - start  # before closing: a player may still be playing out its queue
        complete = True
    finally:
        for sink in sinks:
            sink.close(complete)
    return SpeakStats(first, samples / out_rate, elapsed, count)
