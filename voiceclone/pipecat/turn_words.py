"""The words of a caller's turn so far, from the speech-to-text to the LLM that will answer them.

An LLM reads its whole prompt before its first token: on 2 cores the built-in model needs ~85 ms for a
question's ~20 tokens, on the turn's path. While the caller is still speaking, Whisper can transcribe what they
have said so far (`fast_whisper.FastWhisperSTTService`, about once a second of speech) and the local LLM can
read those words into the caller's context (`LocalLLM.read_ahead`): when the turn ends, only its last words
are left to read. Nothing is answered ahead: the words so far are only evaluated, and a turn that ends
differently costs nothing but that work.

As with `SpeechPauses`, there is no Pipecat frame for this between the two (the user aggregator consumes
transcripts), so one `TurnWords` per call links them directly. Everything here runs on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable

from loguru import logger


class TurnWords:
    """One call's link: the speech-to-text says what it has heard so far, a reader reads it ahead."""

    def __init__(self) -> None:
        self._read: Callable[[str], None] | None = None
        self._stop: Callable[[], None] | None = None
        self._ready: Callable[[], bool] | None = None

    def attach(self, read: Callable[[str], None], stop: Callable[[], None], ready: Callable[[], bool]) -> None:
        """The reader: `read(words)` starts reading them ahead, `stop()` ends that soon, `ready()` says whether
        reading now would be useful (its model is idle)."""
        self._read, self._stop, self._ready = read, stop, ready

    def wanted(self) -> bool:
        """Whether transcribing the words so far is worth it now: a reader is attached and ready."""
        try:
            return self._ready is not None and self._ready()
        except Exception as exc:  # reading ahead is an optimisation: it must never break the call
            logger.warning(f"turn words: reader failed: {exc}")
            return False

    def heard(self, words: str) -> None:
        """The caller has said `words` so far in this turn (still speaking)."""
        self._call(self._read, words)

    def paused(self) -> None:
        """The caller's speech paused: the turn may be ending, its transcription needs the cores."""
        self._call(self._stop)

    def _call(self, listener: Callable | None, *args) -> None:
        if listener is None:
            return
        try:
            listener(*args)
        except Exception as exc:
            logger.warning(f"turn words: reader failed: {exc}")
