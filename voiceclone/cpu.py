"""One thread for numpy's BLAS (OpenBLAS): its idle threads spin and starve the threads that make speech.

After a BLAS call (the matcher's matrix products, resemblyzer), OpenBLAS's worker threads keep spinning on the
CPU for a while. On a 2-core machine that takes the core a torch (OpenMP) thread was about to run on, and the
parallel region then waits for the kernel's next time slice: a 5 ms PerTh mark took 80-110 ms on about one call
in three right after the matcher's first chunk (see benchmarks/speak.py), and the first audio with it. The
products numpy does here are small (a few hundred rows), so one thread loses nothing. Torch, ONNX Runtime,
CTranslate2 and llama.cpp keep their own thread pools.
"""

from __future__ import annotations

import os

ENV = "OPENBLAS_NUM_THREADS"


def one_blas_thread() -> None:
    """Keep numpy's and scipy's OpenBLAS to one thread, unless the user set OPENBLAS_NUM_THREADS themselves.

    Sets the variable for an OpenBLAS not loaded yet, and limits those already loaded (threadpoolctl).
    """
    if ENV in os.environ:
        return
    os.environ[ENV] = "1"
    import sys

    if "numpy" not in sys.modules and "scipy" not in sys.modules:
        return  # nothing is loaded yet: the variable is enough
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
