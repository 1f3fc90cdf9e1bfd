"""Speech to text started at a pause in the speech: it stands for the turn when nothing is said after the pause,
it is dropped when the caller goes on, and redone from the whole utterance when a sound followed the pause.
While the caller speaks, the words so far are told to a reader (the local LLM reading them ahead)."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    EagerTranscriptionFrame,
    InputAudioRawFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)

from testkit.bot_harness import Do, Until, run_script
from voiceclone.pipecat.fast_whisper import FastWhisperSTTService, tail_is_quiet
from voiceclone.pipecat.speech_pauses import SpeechPauses
from voiceclone.pipecat.turn_words import TurnWords

RATE = 16000
TIMEOUT_S = 120  # a limit for a loaded machine: every wait ends on an event first


class CountingWhisper(FastWhisperSTTService):
    """The service with a stand-in model: the text says how many samples it was given; records every call."""

    def __init__(self, pauses: SpeechPauses, words: TurnWords | None = None):
        super().__init__(model=object(), device="cpu", pauses=pauses, words=words)
        self.heard: list[int] = []
        self.loop = asyncio.get_running_loop()
        self.transcribed = asyncio.Event()

    def _transcribe(self, samples: np.ndarray) -> str:
        self.heard.append(len(samples))
        self.loop.call_soon_threadsafe(self.transcribed.set)
        return f"{len(samples)} samples."


def audio(seconds: float, level: float) -> InputAudioRawFrame:
    t = np.arange(int(seconds * RATE)) / RATE
    pcm = (level * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16)
    return InputAudioRawFrame(audio=pcm.tobytes(), sample_rate=RATE, num_channels=1)


def passed(frame) -> bool:
    """The audio went through the service (it has been added to the utterance)."""
    return isinstance(frame, InputAudioRawFrame)


def said(frames) -> list[str]:
    return [f.text for f in frames if isinstance(f, TranscriptionFrame)]


def a_transcript(frame) -> bool:
    return isinstance(frame, TranscriptionFrame)


async def until_transcribed(service: CountingWhisper):
    await asyncio.wait_for(service.transcribed.wait(), TIMEOUT_S)
    service.transcribed.clear()


def sound(seconds: float, level: float) -> list:
    """Steps: the caller's audio, then wait until it has gone through the service (into the utterance)."""
    return [audio(seconds, level), Until(passed)]


def pause(stt: CountingWhisper, pauses: SpeechPauses) -> list:
    """Steps: the VAD reports a pause, then wait until the transcription it starts has run."""
    return [Do(lambda: _call(pauses.paused)), Do(lambda: until_transcribed(stt))]


async def turn(stt: CountingWhisper, *steps) -> list:
    """A turn: the VAD's start, `steps`, the VAD's stop; the frames that came out, up to the transcript."""
    script = [VADUserStartedSpeakingFrame(), *steps, VADUserStoppedSpeakingFrame(), Until(a_transcript)]
    return await run_script(stt, script, timeout=TIMEOUT_S)


async def test_the_transcript_started_at_the_pause_is_the_turns():
    pauses = SpeechPauses()
    stt = CountingWhisper(pauses)
    frames = await turn(
        stt,
        *sound(1.0, 0.3),
        *pause(stt, pauses),
        *sound(0.2, 0.0),  # the VAD's stop_secs of quiet
    )
    assert len(stt.heard) == 1, "transcribed once, at the pause"
    assert said(frames) == [f"{stt.heard[0]} samples."]
    assert stt.heard[0] >= RATE  # all the speech up to the pause


async def test_speech_that_goes_on_after_a_pause_is_transcribed_whole():
    pauses = SpeechPauses()
    stt = CountingWhisper(pauses)
    frames = await turn(
        stt,
        *sound(1.0, 0.3),
        *pause(stt, pauses),
        Do(lambda: _call(pauses.resumed)),  # the caller goes on: that text was only the start
        *sound(1.0, 0.3),
        *pause(stt, pauses),
        *sound(0.2, 0.0),
    )
    first, second = stt.heard
    assert second >= first + RATE
    assert said(frames) == [f"{second} samples."]


async def test_the_text_at_a_pause_is_told_at_once_and_withdrawn_when_the_caller_goes_on():
    pauses = SpeechPauses()
    stt = CountingWhisper(pauses)
    frames = await turn(
        stt,
        *sound(1.0, 0.3),
        *pause(stt, pauses),
        Until(lambda f: isinstance(f, EagerTranscriptionFrame)),  # before the VAD's stop: it may be the turn
        Do(lambda: _call(pauses.resumed)),
        Until(lambda f: isinstance(f, EagerEndOfTurnCancelFrame)),  # it was not
        *sound(1.0, 0.3),
        *pause(stt, pauses),
        Until(lambda f: isinstance(f, EagerTranscriptionFrame) and f.text != f"{stt.heard[0]} samples."),
        *sound(0.2, 0.0),
    )
    first, second = stt.heard
    eager = [f.text for f in frames if isinstance(f, EagerTranscriptionFrame)]
    assert eager == [f"{first} samples.", f"{second} samples."]
    assert said(frames) == [f"{second} samples."]
    assert sum(isinstance(f, EagerEndOfTurnCancelFrame) for f in frames) == 1  # the one that stood is not withdrawn


async def test_a_sound_after_the_pause_has_the_utterance_transcribed_again():
    pauses = SpeechPauses()
    stt = CountingWhisper(pauses)
    frames = await turn(
        stt,
        *sound(1.0, 0.3),
        *pause(stt, pauses),
        *sound(0.1, 0.0),
        *sound(0.1, 0.2),  # a soft last word the VAD did not count as speech
    )
    early, whole = stt.heard
    assert whole > early + 0.2 * RATE  # the segment, with Pipecat's trailing silence
    assert said(frames) == [f"{whole} samples."]


@pytest.mark.parametrize(("tail_level", "quiet"), [(0.0, True), (0.003, True), (0.1, False), (0.3, False)])
def test_only_a_tail_far_below_the_speech_lets_the_early_transcript_stand(tail_level, quiet):
    speech = np.concatenate([np.sin(np.arange(RATE) / 5) * 0.3, np.zeros(RATE // 2)])
    tail = np.sin(np.arange(RATE // 5) / 5) * tail_level
    assert tail_is_quiet(speech, tail) is quiet
    assert tail_is_quiet(speech, np.zeros(0))


class Reader:
    """Stands for the LLM reading the caller's words ahead: records what it is told."""

    def __init__(self, ready: bool = True):
        self.words: list[str] = []
        self.stops = 0
        self.ready = ready
        self.told = asyncio.Event()

    def attach_to(self, words: TurnWords) -> TurnWords:
        words.attach(self.read, self.stop, lambda: self.ready)
        return words

    def read(self, text: str) -> None:
        self.words.append(text)
        self.told.set()

    def stop(self) -> None:
        self.stops += 1

    async def until_told(self) -> None:
        await asyncio.wait_for(self.told.wait(), TIMEOUT_S)
        self.told.clear()


async def test_the_words_so_far_are_told_while_the_caller_speaks_and_the_reader_stopped_at_the_pause():
    pauses, reader = SpeechPauses(), Reader()
    stt = CountingWhisper(pauses, reader.attach_to(TurnWords()))
    frames = await turn(
        stt,
        *sound(1.2, 0.3),  # a second of speech: the words so far are transcribed
        Do(reader.until_told),
        *sound(0.5, 0.3),  # not yet another second
        *sound(0.7, 0.3),  # now
        Do(reader.until_told),
        *pause(stt, pauses),
        *sound(0.2, 0.0),
    )
    first, second, at_pause = stt.heard
    assert reader.words == [f"{first} samples.", f"{second} samples."]
    assert first == int(1.2 * RATE) and second == int(2.4 * RATE)  # each the utterance so far
    assert reader.stops == 1  # the pause: Whisper's turn on the cores
    assert said(frames) == [f"{at_pause} samples."]  # the turn's own transcript is the one made at the pause


class HeldWhisper(CountingWhisper):
    """Its first transcription (the words so far) runs until the test lets it finish."""

    def __init__(self, pauses: SpeechPauses, words: TurnWords):
        super().__init__(pauses, words)
        self.started = asyncio.Event()
        self.finish = threading.Event()

    def _transcribe(self, samples: np.ndarray) -> str:
        if not self.heard:
            self.loop.call_soon_threadsafe(self.started.set)
            self.finish.wait(TIMEOUT_S)
        return super()._transcribe(samples)


async def test_words_so_far_still_being_transcribed_at_a_pause_after_them_are_the_pauses_transcript():
    """Not transcribed a second time behind them (the model takes one at a time: the turn's text would be late)."""
    pauses, reader = SpeechPauses(), Reader()
    stt = HeldWhisper(pauses, reader.attach_to(TurnWords()))

    async def pause_then_finish():
        await asyncio.wait_for(stt.started.wait(), TIMEOUT_S)
        pauses.paused()
        stt.finish.set()

    frames = await turn(stt, *sound(1.2, 0.3), *sound(0.1, 0.0), Do(pause_then_finish), *sound(0.2, 0.0))
    assert stt.heard == [int(1.2 * RATE)]  # one transcription, of the speech up to the pause
    assert said(frames) == [f"{int(1.2 * RATE)} samples."]
    assert reader.words == []  # they were the turn's, not words so far


async def test_words_so_far_with_speech_after_them_are_not_the_pauses_transcript():
    pauses, reader = SpeechPauses(), Reader()
    stt = HeldWhisper(pauses, reader.attach_to(TurnWords()))

    async def pause_then_finish():
        pauses.paused()
        stt.finish.set()
        await until_transcribed(stt)

    frames = await turn(
        stt,
        *sound(1.2, 0.3),
        Do(lambda: asyncio.wait_for(stt.started.wait(), TIMEOUT_S)),
        *sound(0.5, 0.3),  # a last word after the words so far began to be transcribed
        Do(pause_then_finish),
        *sound(0.2, 0.0),
    )
    at_pause = int(1.7 * RATE)
    assert sorted(stt.heard) == [int(1.2 * RATE), at_pause]  # the pause's own transcription, of all the speech
    assert said(frames) == [f"{at_pause} samples."]


async def test_no_words_so_far_are_transcribed_for_a_reader_that_cannot_use_them():
    pauses, reader = SpeechPauses(), Reader(ready=False)  # its model is busy with another call's reply
    stt = CountingWhisper(pauses, reader.attach_to(TurnWords()))
    await turn(stt, *sound(1.2, 0.3), *sound(1.2, 0.3), *pause(stt, pauses), *sound(0.2, 0.0))
    assert len(stt.heard) == 1 and reader.words == []


async def _call(function):
    function()


def test_the_vad_reports_pauses_and_resumptions_of_speech():
    """Real Silero on Piper speech: a pause shorter than stop_secs is a pause, then a resumption."""
    import soxr
    from pipecat.audio.vad.vad_analyzer import VADParams

    from testkit.speech import speech_sample
    from voiceclone.pipecat.shared_models import SharedSileroVADAnalyzer

    speech = soxr.resample(speech_sample(1.5, 22050), 22050, RATE).astype(np.float32)
    quiet = np.zeros(RATE // 2, dtype=np.float32)
    signal = np.concatenate([quiet, speech, np.zeros(RATE // 4, dtype=np.float32), speech, quiet, quiet])
    events: list[str] = []
    pauses = SpeechPauses()
    pauses.listen(lambda: events.append("pause"), lambda: events.append("resume"))
    vad = SharedSileroVADAnalyzer(params=VADParams(stop_secs=0.6), pauses=pauses)
    vad.set_sample_rate(RATE)  # as the transport's start does
    pcm = (signal * 32767).astype(np.int16).tobytes()

    async def feed():
        states = []
        for i in range(0, len(pcm), 640):  # 20 ms packets, as a transport delivers them
            states.append(await vad.analyze_audio(pcm[i : i + 640]))
        return states

    states = asyncio.run(feed())
    assert events[0] == "pause" and events[-1] == "pause" and "resume" in events
    assert all(a != b for a, b in zip(events[:-1], events[1:], strict=True)), "pauses and resumptions alternate"
    assert states[-1].name == "QUIET"
