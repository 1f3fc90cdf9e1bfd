"""`once`: a model is loaded on first use, once, even when threads ask together; a failed load is tried again."""

from __future__ import annotations

import threading

import pytest

from voiceclone.once import once


def test_threads_asking_together_share_one_load():
    started, release, calls = threading.Event(), threading.Event(), []

    @once
    def load():
        calls.append(1)
        started.set()
        assert release.wait(60)
        return object()

    results = []
    threads = [threading.Thread(target=lambda: results.append(load())) for _ in range(4)]
    for thread in threads:
        thread.start()
    assert started.wait(60)
    release.set()
    for thread in threads:
        thread.join(60)
    assert len(calls) == 1 and len(results) == 4 and all(r is results[0] for r in results)


def test_a_failed_load_is_tried_again():
    attempts = []

    @once
    def load():
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("the disk hiccuped")
        return "model"

    with pytest.raises(OSError):
        load()
    assert load() == "model" and load() == "model" and len(attempts) == 2
