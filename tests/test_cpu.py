"""Sharing the cores: numpy's OpenBLAS on one thread once voiceclone is imported (unless the user chose otherwise);
the local LLM gives way while an answer's first audio is being made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

from voiceclone.cpu import FirstAudio

PROBE = """
import json, sys
{first}
import voiceclone, numpy, threadpoolctl
print(json.dumps([i["num_threads"] for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"]))
"""


def openblas_threads(first: str, **env: str) -> list[int]:
    environ = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"} | env
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(first=first)], env=environ, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_openblas_is_limited_whether_numpy_loads_before_or_after_voiceclone():
    assert openblas_threads("") == [1]  # voiceclone first: the variable does it
    assert openblas_threads("import numpy") == [1]  # numpy first: threadpoolctl does it


def test_a_users_own_setting_is_kept():
    assert openblas_threads("import numpy", OPENBLAS_NUM_THREADS="2") == [2]


def test_the_llm_waits_while_an_answers_first_audio_is_made_and_goes_on_when_it_exists():
    gate = FirstAudio()
    assert gate.wait() == 0.0  # nothing pending: no wait at all
    hold = gate.hold()
    waited = threading.Event()
    waiter = threading.Thread(target=lambda: (gate.wait(), waited.set()))
    gate.MAX_WAIT_S = 60.0  # the test releases it long before
    waiter.start()
    assert not waited.wait(0.2)  # still held
    hold.release()
    hold.release()  # idempotent: a second release does not free another answer's hold
    assert waited.wait(30)
    waiter.join(30)
    assert gate.pending == 0


def test_a_hold_never_released_slows_the_llm_but_never_stops_it():
    gate = FirstAudio()
    gate.MAX_WAIT_S = 0.01
    gate.hold()
    gate.wait()  # returns after MAX_WAIT_S
    cancel = threading.Event()
    cancel.set()
    assert gate.wait(cancel) < 30  # a cancelled reply does not wait at all


def test_two_answers_hold_until_both_have_their_first_audio():
    gate = FirstAudio()
    first, second = gate.hold(), gate.hold()
    first.release()
    assert gate.pending == 1
    second.release()
    assert gate.pending == 0


FREEZE_PROBE = """
import gc, json
import torch, pipecat.pipeline.worker  # what a bot loads
from voiceclone.collector import freeze_what_is_loaded
before = len(gc.get_objects())
frozen = freeze_what_is_loaded()
print(json.dumps([before, frozen, len(gc.get_objects())]))
"""


def test_what_the_bot_loaded_is_frozen_out_of_the_collectors_full_passes():
    """A full pass of the garbage collector stops the event loop for as long as it scans; after the freeze it no
    longer scans what was loaded (run in a process of its own: a frozen object is never collected)."""
    out = subprocess.run([sys.executable, "-c", FREEZE_PROBE], capture_output=True, text=True, check=True)
    before, frozen, after = json.loads(out.stdout.strip().splitlines()[-1])
    assert frozen >= before // 2 and after < frozen // 20, (before, frozen, after)
