"""The moments a caller's speech pauses and resumes, from the VAD to whoever wants to start work early.

The VAD calls a turn's speech over only after `stop_secs` of quiet (0.2 s); the pause itself starts the moment
its confidence drops (Silero's SPEAKING -> STOPPING). Whisper needs ~0.1 s for a short question on 2 cores, so
a transcription started at the pause is ready before the VAD's stop, instead of starting then
(`fast_whisper.FastWhisperSTTService`). If the caller goes on speaking, the early work is dropped.

In a Pipecat pipeline the VAD runs in the user aggregator, downstream of the speech-to-text: there is no frame
for "the confidence dropped", so one `SpeechPauses` per call links the two directly (`SharedSileroVADAnalyzer`
reports to it, the STT listens).
"""

from __future__ import annotations

from collections.abc import Callable

from loguru import logger


class SpeechPauses:
    """One call's speech pauses: the VAD reports them, listeners are told at once (on the event loop)."""

    def __init__(self) -> None:
        self._listeners: list[tuple[Callable[[], None], Callable[[], None]]] = []

    def listen(self, on_pause: Callable[[], None], on_resume: Callable[[], None]) -> None:
        """Call `on_pause` when speech pauses and `on_resume` when it goes on before the VAD's stop."""
        self._listeners.append((on_pause, on_resume))

    def paused(self) -> None:
        """The VAD's confidence dropped: speech may have ended."""
        self._tell(0)

    def resumed(self) -> None:
        """The speech went on: the pause was not its end."""
        self._tell(1)

    def _tell(self, which: int) -> None:
        for listener in self._listeners:
            try:
                listener[which]()
            except Exception as exc:  # early work is an optimisation: it must never break the VAD
                logger.warning(f"speech pause listener failed: {exc}")
