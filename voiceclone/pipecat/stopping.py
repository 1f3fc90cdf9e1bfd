"""Ctrl-C and SIGTERM for a running bot: the first ends every call and stops; a second leaves at once.

Every transport stops the same way, so that Ctrl-C never waits for a caller to hang up and never ends in a
traceback.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def leave_now() -> None:
    """The second stop signal: say so and exit at once (no cleanup, no traceback)."""
    os.write(2, b"stopped\n")
    os._exit(130)


def on_stop_signals(first: Callable[[], None]) -> None:
    """Call `first` on the first SIGINT or SIGTERM, and leave at once on the next one.

    Args:
        first: Starts a clean stop (must not block: schedule work on the running loop).
    """
    loop = asyncio.get_running_loop()
    stopping = False

    def handle() -> None:
        nonlocal stopping
        if stopping:
            leave_now()
            return
        stopping = True
        first()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, handle)
