"""The VAD and turn models are opened once per process; each call keeps its own state and scores as Pipecat's own."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
from pipecat.audio.vad.silero import SileroVADAnalyzer

from voiceclone.pipecat.shared_models import SharedSileroVADAnalyzer, SharedSmartTurnAnalyzer


@pytest.fixture(scope="module")
def speech_16k() -> np.ndarray:
    """Piper speech with quiet either side, at 16 kHz (what the bots feed the VAD)."""
    from testkit.speech import speech_sample

    speech = soxr.resample(speech_sample(2.0, 22050), 22050, 16000).astype(np.float32)
    quiet = np.zeros(8000, dtype=np.float32)
    return np.concatenate([quiet, speech, quiet, speech * 0.5, quiet])


def windows(audio: np.ndarray) -> list[bytes]:
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    return [pcm[i : i + 512].tobytes() for i in range(0, len(pcm) - 511, 512)]


def scores(analyzer, chunks) -> list[float]:
    analyzer.set_sample_rate(16000)
    return [float(np.asarray(analyzer.voice_confidence(chunk)).item()) for chunk in chunks]


def test_a_shared_vad_scores_exactly_like_pipecats_own(speech_16k):
    chunks = windows(speech_16k)
    own = scores(SileroVADAnalyzer(), chunks)
    shared = scores(SharedSileroVADAnalyzer(), chunks)
    assert max(own) > 0.9 and min(own) < 0.1  # the audio has speech and quiet in it
    assert shared == own


def test_calls_share_the_model_but_not_the_state(speech_16k):
    chunks = windows(speech_16k)
    alone = scores(SharedSileroVADAnalyzer(), chunks)
    a, b = SharedSileroVADAnalyzer(), SharedSileroVADAnalyzer()
    assert a._model.session is b._model.session  # one model in memory
    a.set_sample_rate(16000)
    b.set_sample_rate(16000)
    interleaved_a, quiet = [], windows(np.zeros(512 * len(chunks), dtype=np.float32))
    for mine, theirs in zip(chunks, quiet, strict=True):  # another caller, silent, between every window of ours
        interleaved_a.append(float(np.asarray(a.voice_confidence(mine)).item()))
        b.voice_confidence(theirs)
    assert interleaved_a == alone


def test_the_shared_turn_model_judges_like_pipecats_own(speech_16k):
    from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3

    own, shared = LocalSmartTurnAnalyzerV3(), SharedSmartTurnAnalyzer()
    assert shared._session is SharedSmartTurnAnalyzer()._session
    audio = speech_16k[: 16000 * 3]
    assert shared._predict_endpoint(audio) == own._predict_endpoint(audio)
