"""`ClonedVoiceTTSService`: a Pipecat TTS service speaking through a `ClonedVoice` (base engine + converter)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr
from loguru import logger
from pipecat.frames.frames import ErrorFrame, Frame, TTSAudioRawFrame
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TTSService
from pipecat.utils.types import NOT_GIVEN, NotGiven

from ..cloned import ClonedVoice
from ..errors import UserError

# Steady chunk for live calls: at most ~0.25 s of work, so an interruption waits little for the chunk in
# flight on the single conversion thread.
BOT_CHUNK_FRAMES = 64


@dataclass
class ClonedVoiceTTSSettings(TTSSettings):
    """`voice` is an enrolled voice's name; `tau` the conversion's sampling temperature."""

    tau: float | None | NotGiven = field(default_factory=lambda: NOT_GIVEN)


class ClonedVoiceTTSService(TTSService):
    """Sentence by sentence: base synthesis, then streaming conversion; chunks are pushed as they come.

    Blocking work runs on one dedicated thread (synthesis and conversion share the CPU; two utterances
    never compete). An interruption cancels `run_tts`; the chunk in flight on the thread is discarded.
    """

    Settings = ClonedVoiceTTSSettings
    _settings: ClonedVoiceTTSSettings

    def __init__(
        self,
        *,
        voice: ClonedVoice,
        voice_name: str,
        resolve_voice: Callable[[str], np.ndarray],
        tau: float | None = None,
        chunk_frames: int = BOT_CHUNK_FRAMES,
        settings: ClonedVoiceTTSSettings | None = None,
        **kwargs,
    ):
        """Speak through `voice`; Pipecat's TTS arguments (sample_rate, ...) pass through `kwargs`.

        Args:
            voice: The cloned voice to start with (shared engine and converter; this service never changes it).
            voice_name: Its enrolled name, reported as the `voice` setting.
            resolve_voice: Enrolled name -> embedding, for `TTSUpdateSettingsFrame(voice=...)`; raises
                `UserError` for a name it cannot use.
            tau: Conversion sampling temperature, 0 to 2; None takes the voice's default.
            chunk_frames: Steady conversion chunk in spectrogram frames (256 samples each at 22050 Hz).
            settings: Initial settings overriding the above (Pipecat's style).
        """
        store = self.Settings(model=None, voice=voice_name, language=None, tau=voice.tau if tau is None else tau)
        if settings is not None:
            store.apply_update(settings)
        super().__init__(push_start_frame=True, push_stop_frames=True, settings=store, **kwargs)
        self._voice = voice
        self._chunk_frames = chunk_frames
        self._resolve_voice = resolve_voice
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cloned-voice")

    def can_generate_metrics(self) -> bool:
        """TTFB and processing metrics are reported (and include the conversion)."""
        return True

    async def cleanup(self):
        """Release the conversion thread."""
        await super().cleanup()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _update_settings(self, delta: ClonedVoiceTTSSettings) -> dict[str, Any]:
        previous_voice = self._settings.voice
        changed = await super()._update_settings(delta)
        if "voice" in changed:
            name = str(self._settings.voice)
            try:
                embedding = await asyncio.get_running_loop().run_in_executor(self._executor, self._resolve_voice, name)
            except UserError as exc:
                self._settings.voice = previous_voice
                await self.push_error(f"cannot switch to voice {name!r}: {exc}")
            else:
                self._voice = self._voice.with_target(embedding)
                logger.info(f"{self}: now speaking as {name!r}")
        return changed

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        """Converted audio for one sentence, chunk by chunk.

        Args:
            text: One sentence (Pipecat's aggregator splits the LLM's text with the same rules as `speak`).
            context_id: The audio context the frames belong to.

        Yields:
            `TTSAudioRawFrame`s of 16-bit mono PCM at the pipeline's output rate, or one `ErrorFrame` when the
            base engine fails.
        """
        loop = asyncio.get_running_loop()
        tau = self._settings.tau if isinstance(self._settings.tau, (int, float)) else None
        chunks = self._voice.speak(text, tau=tau, chunk_frames=self._chunk_frames)
        rate = self._voice.sample_rate
        resampler = (
            soxr.ResampleStream(rate, self.sample_rate, 1, dtype="float32") if rate != self.sample_rate else None
        )

        def step():
            try:
                return next(chunks)
            except StopIteration:
                return None

        await self.start_tts_usage_metrics(text)
        try:
            while True:
                chunk = await loop.run_in_executor(self._executor, step)
                last = chunk is None
                if last:
                    if resampler is None:
                        break
                    chunk = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
                elif resampler is not None:
                    chunk = resampler.resample_chunk(chunk)
                if len(chunk):
                    await self.stop_ttfb_metrics()
                    yield TTSAudioRawFrame(_pcm16(chunk), self.sample_rate, 1, context_id=context_id)
                if last:
                    break
        except UserError as exc:  # the base engine failed: a rejected key, a server that does not answer
            yield ErrorFrame(error=f"{self}: {exc}")
        finally:
            await self.stop_ttfb_metrics()


def _pcm16(chunk: np.ndarray) -> bytes:
    return (np.clip(chunk, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
