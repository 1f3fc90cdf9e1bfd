"""Python's garbage collector kept out of a live call: what the bot loads at start is frozen before calls come.

Python's cyclic collector now and then makes a full pass over every object it tracks, holding the GIL, so the event
loop that carries every call's audio stops for the whole pass. A loaded bot tracks about 480,000 objects (torch,
Pipecat, the models' Python side), and a full pass over them took 120-260 ms on a 2-core Xeon: one landing in a
turn delays the answer that much, and one inside an answer is a gap the caller hears. The passes come when enough
new objects have lived long (building calls' pipelines makes many): seen once 3 s into a first call, 256 ms.

`gc.freeze()` moves everything alive into a permanent generation that the collector no longer scans (CPython's
documented remedy; what stays there is never collected, which suits models and modules loaded for the process's
life). After it, the full passes scan only what calls make.

A call's pipeline is a web of reference cycles (processors linked both ways, event handlers closing over them), so
an ended call is freed only by a full pass, and those come seldom: each ended call kept its pipeline, its
connection's FFmpeg Opus codecs (2 threads) and, with OpenVoice, 100-400 MB until one came (threads grew by 2 per
call). `collect_ended_call` is run a moment after each call ends.
"""

from __future__ import annotations

import ctypes
import gc
import time


def freeze_what_is_loaded() -> int:
    """Collect once, then freeze every object alive (call after the models are loaded, before calls come).

    Returns:
        How many objects are frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def collect_ended_call() -> tuple[int, float, float]:
    """A full pass now that a call has ended, so that its pipeline, codecs and threads go at once; then the C heap
    trimmed (`_trim_heap`). Run it off the event loop: the pass holds the GIL, the trim does not.

    Only what is not frozen is scanned (what live calls hold, and the ended call's cycles).

    Returns:
        The objects found unreachable, the seconds the pass took, the seconds the trim took.
    """
    start = time.perf_counter()
    found = gc.collect()
    collected = time.perf_counter()
    _trim_heap()
    return found, collected - start, time.perf_counter() - collected


def _trim_heap() -> None:
    """Give the C heap's free memory back to the system (glibc's `malloc_trim`; elsewhere nothing): an ended call's
    buffers are freed into the heap of the thread that made them, which glibc otherwise keeps for itself."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim(0)
