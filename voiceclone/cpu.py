"""Sharing 2 cores between the work of a live answer: numpy's BLAS on one thread; the LLM gives way to first audio.

One thread for numpy's BLAS (OpenBLAS): its idle threads spin and starve the threads that make speech.

After a BLAS call (the matcher's matrix products, resemblyzer), OpenBLAS's worker threads keep spinning on the
CPU for a while. On a 2-core machine that takes the core a torch (OpenMP) thread was about to run on, and the
parallel region then waits for the kernel's next time slice: a 5 ms PerTh mark took 80-110 ms on about one call
in three right after the matcher's first chunk (see benchmarks/speak.py), and the first audio with it. The
products numpy does here are small (a few hundred rows), so one thread loses nothing. Torch, ONNX Runtime,
CTranslate2 and llama.cpp keep their own thread pools.
"""

from __future__ import annotations

import os
import sys
import threading
import time

ENV = "OPENBLAS_NUM_THREADS"


def one_blas_thread() -> None:
    """Keep numpy's and scipy's OpenBLAS to one thread, unless the user set OPENBLAS_NUM_THREADS themselves.

    Sets the variable for an OpenBLAS not loaded yet, and limits those already loaded (threadpoolctl).
    """
    if ENV in os.environ:
        return
    os.environ[ENV] = "1"
    if "numpy" not in sys.modules and "scipy" not in sys.modules:
        return  # nothing is loaded yet: the variable is enough
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


class FirstAudio:
    """Answers whose first audio is being made now; the local LLM's replies give way to them.

    On 2 cores the LLM writing the rest of an answer (both cores, ~75 tokens/s) and the TTS making its first words
    (Piper, the converter, the mark: both cores too) slowed each other: the answer's first audio came ~0.35 s after
    its first words were written instead of ~0.13 s. The rest of the answer is not needed for a second or more
    (the first words play that long), so a reply past its first words waits while any answer's first audio is
    being made, at most `MAX_WAIT_S` at a time (and the engine bounds a reply's waits in all). Process-wide, as
    the cores are.
    """

    MAX_WAIT_S = 0.5  # a hold that is never released (a stuck TTS) slows the LLM, never stops it

    def __init__(self):
        self._pending = 0
        self._changed = threading.Condition()

    def hold(self) -> FirstAudioHold:
        """Note that an answer's first audio is being made; release the hold when it exists (or the answer ends)."""
        with self._changed:
            self._pending += 1
        return FirstAudioHold(self)

    def _release(self) -> None:
        with self._changed:
            self._pending -= 1
            self._changed.notify_all()

    @property
    def pending(self) -> int:
        """How many answers are making their first audio now."""
        return self._pending

    def wait(self, cancel: threading.Event | None = None, limit_s: float | None = None) -> float:
        """Block while any answer's first audio is being made (at most `MAX_WAIT_S`, or `limit_s` if less); the
        seconds waited."""
        if not self._pending:
            return 0.0
        start = time.monotonic()
        deadline = start + (self.MAX_WAIT_S if limit_s is None else min(self.MAX_WAIT_S, limit_s))
        with self._changed:
            while self._pending and not (cancel is not None and cancel.is_set()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(min(left, 0.05))
        return time.monotonic() - start


class FirstAudioHold:
    """One answer's hold on `FirstAudio`; `release` is idempotent."""

    def __init__(self, owner: FirstAudio):
        self._owner: FirstAudio | None = owner

    def release(self) -> None:
        owner, self._owner = self._owner, None
        if owner is not None:
            owner._release()


FIRST_AUDIO = FirstAudio()
