"""Choosing the converter (`auto | openvoice | matcher`) as a user does, and `voiceclone eval` from the command line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from cli_helpers import error_line, run_cli

from voiceclone.cloning.checkpoints import ModelStore
from voiceclone.cloning.choice import choose
from voiceclone.cloning.matcher_conversion import MatcherConversion
from voiceclone.cloning.openvoice_conversion import OpenVoiceConversion
from voiceclone.config.sections import ConverterSettings
from voiceclone.errors import UserError
from voiceclone.voices.store import VoiceLibrary

NOTE = "using the built-in voice matcher"


@pytest.fixture(scope="module")
def no_models(tmp_path_factory):
    return tmp_path_factory.mktemp("no-models")


@pytest.fixture(scope="module")
def matcher_env(tmp_path_factory, recordings, no_models):
    """A library whose voice 'bob' was enrolled with no OpenVoice converter installed."""
    root = tmp_path_factory.mktemp("matcher-only")
    env = {
        "VOICECLONE_VOICES_DIR": root / "voices",
        "VOICECLONE_MODELS_DIR": no_models,
        "VOICECLONE_CACHE_DIR": root / "cache",
    }
    result = run_cli("enroll", str(recordings["bob"]), "--name", "bob", env=env)
    assert result.returncode == 0, result.stderr
    return env


def test_auto_without_openvoice_enrolls_a_profile_and_says_so_once(matcher_env, recordings):
    meta = json.loads((matcher_env["VOICECLONE_VOICES_DIR"] / "bob" / "voice.json").read_text())
    assert meta["converter"]["engine"] == "matcher" and meta["embeddings"] == {}
    assert "m2" in meta["profiles"] and (matcher_env["VOICECLONE_VOICES_DIR"] / "bob" / "profile-m2.json").is_file()
    result = run_cli("enroll", str(recordings["carol"]), "--name", "carol", env=matcher_env)
    assert result.returncode == 0 and result.stderr.count(NOTE) == 1 and "voiceclone models download" in result.stderr


def test_auto_with_openvoice_installed_stores_both(tmp_path, recordings, models_dir):
    env = {"VOICECLONE_VOICES_DIR": tmp_path / "v", "VOICECLONE_MODELS_DIR": models_dir}
    result = run_cli("enroll", str(recordings["bob"]), "--name", "bob", env=env)
    assert result.returncode == 0, result.stderr
    assert NOTE not in result.stderr
    meta = json.loads((tmp_path / "v" / "bob" / "voice.json").read_text())
    assert meta["converter"]["engine"] == "openvoice" and "v2" in meta["embeddings"] and "m2" in meta["profiles"]


def test_the_matcher_speaks_with_nothing_installed(matcher_env, tmp_path):
    out = tmp_path / "m.wav"
    result = run_cli(
        "speak", "Hello from the matcher.", "--voice", "bob", "--converter", "matcher", "-o", str(out), env=matcher_env
    )
    assert result.returncode == 0, result.stderr
    assert NOTE not in result.stderr and "voice matcher m2" in result.stderr
    audio, sr = sf.read(out)
    assert sr == 22050 and len(audio) > sr and np.abs(audio).max() > 0.05


def test_asking_for_openvoice_when_it_is_missing_is_one_line(matcher_env, tmp_path):
    for command in (["speak", "Hi.", "--voice", "bob", "-o", str(tmp_path / "o.wav")], ["eval", "bob"]):
        line = error_line(run_cli(*command, "--converter", "openvoice", env=matcher_env))
        assert "voiceclone models download" in line


def test_a_bad_input_is_only_its_error_not_the_matcher_note(matcher_env, tmp_path):
    """The fallback note comes when a converter is loaded, so a missing file is not preceded by it."""
    result = run_cli("enroll", str(tmp_path / "missing.wav"), "--name", "x", env=matcher_env)
    assert "file not found" in error_line(result) and NOTE not in result.stderr


def test_a_voice_without_its_openvoice_embedding_gets_one_on_first_use(matcher_env, models_dir, tmp_path):
    voices = tmp_path / "voices"
    shutil.copytree(matcher_env["VOICECLONE_VOICES_DIR"] / "bob", voices / "bob")
    env = {**matcher_env, "VOICECLONE_VOICES_DIR": voices, "VOICECLONE_MODELS_DIR": models_dir}
    result = run_cli("speak", "Hi there.", "--voice", "bob", "-o", str(tmp_path / "o.wav"), env=env)
    assert result.returncode == 0, result.stderr
    assert "OpenVoice v2" in result.stderr and (voices / "bob" / "embedding-v2.npy").is_file()


def test_an_older_voice_gets_its_profile_from_the_kept_speech(matcher_env, tmp_path):
    voices = tmp_path / "voices"
    shutil.copytree(matcher_env["VOICECLONE_VOICES_DIR"] / "bob", voices / "bob")
    (voices / "bob" / "profile-m2.json").unlink()
    meta = json.loads((voices / "bob" / "voice.json").read_text())
    meta.pop("profiles")
    (voices / "bob" / "voice.json").write_text(json.dumps(meta))
    conversion = MatcherConversion()
    library = VoiceLibrary(voices)
    profile = conversion.voice_data(library, library.get("bob"))
    assert (voices / "bob" / "profile-m2.json").is_file() and profile.to_json() == library.get("bob").profile("m2")


def test_a_damaged_profile_is_made_again_and_the_voice_and_its_consent_kept(matcher_env, tmp_path):
    voices = tmp_path / "voices"
    shutil.copytree(matcher_env["VOICECLONE_VOICES_DIR"] / "bob", voices / "bob")
    before = json.loads((voices / "bob" / "voice.json").read_text())
    (voices / "bob" / "profile-m2.json").write_text("garbage")
    env = {**matcher_env, "VOICECLONE_VOICES_DIR": voices}
    result = run_cli("speak", "Hi there.", "--voice", "bob", "-o", str(tmp_path / "o.wav"), env=env)
    assert result.returncode == 0, result.stderr
    assert "profile-m2.json is not valid JSON; making it again from the kept speech" in result.stderr
    assert VoiceLibrary(voices).get("bob").profile("m2") is not None  # remade, valid
    after = json.loads((voices / "bob" / "voice.json").read_text())
    assert after.get("consent") == before.get("consent")


def test_a_profile_stored_before_codebooks_gets_its_codebook_from_the_kept_speech(matcher_env, tmp_path):
    voices = tmp_path / "voices"
    shutil.copytree(matcher_env["VOICECLONE_VOICES_DIR"] / "bob", voices / "bob")
    stored = json.loads((voices / "bob" / "profile-m2.json").read_text())
    del stored["voiced_codebook_db"]
    (voices / "bob" / "profile-m2.json").write_text(json.dumps(stored))
    library = VoiceLibrary(voices)
    profile = MatcherConversion().voice_data(library, library.get("bob"))
    assert profile.voiced_codebook_db is not None
    assert "voiced_codebook_db" in library.get("bob").profile("m2")


def test_choose(models_dir, no_models):
    installed, empty = ModelStore.from_settings(models_dir), ModelStore.from_settings(no_models)
    notes: list[str] = []
    assert choose(ConverterSettings(engine="auto"), empty, notes.append) is MatcherConversion and len(notes) == 1
    assert isinstance(choose(ConverterSettings(engine="auto"), installed, notes.append)(), OpenVoiceConversion)
    assert choose(ConverterSettings(engine="matcher"), installed, notes.append) is MatcherConversion
    assert len(notes) == 1 and notes[0].endswith("`voiceclone models download`)")
    choose(ConverterSettings(engine="auto", version="v1"), empty, notes.append)
    assert notes[1].endswith("`voiceclone models download --version v1`)")
    with pytest.raises(UserError, match="models download"):
        choose(ConverterSettings(engine="openvoice"), empty)
    with pytest.raises(UserError, match="--converter-dir"):
        choose(ConverterSettings(engine="matcher", folder=models_dir), empty)


def test_a_gpu_asked_for_with_the_matcher_is_said_to_go_unused(no_models):
    empty = ModelStore.from_settings(no_models)
    for engine in ("matcher", "auto"):
        notes: list[str] = []
        assert choose(ConverterSettings(engine=engine, device="cuda"), empty, notes.append) is MatcherConversion
        assert notes[-1] == "the voice matcher runs on the CPU: --device cuda is for the OpenVoice converter"
    for device in ("auto", "cpu"):
        notes = []
        choose(ConverterSettings(engine="matcher", device=device), empty, notes.append)
        assert notes == []


def test_an_unknown_device_is_refused_whichever_converter(matcher_env, tmp_path):
    out = str(tmp_path / "o.wav")
    for converter in ("matcher", "auto"):
        line = error_line(
            run_cli(
                "speak",
                "Hi.",
                "--voice",
                "bob",
                "--converter",
                converter,
                "--device",
                "tpu",
                "-o",
                out,
                env=matcher_env,
            )
        )
        assert line == "error: --device: unknown device 'tpu': use auto, cpu, cuda, cuda:N or mps"
    assert ConverterSettings(device=" CUDA:1 ").device == "cuda:1"


# ------------------------------------------------------------------------------------------------------------ eval
def test_eval_json_reports_base_and_clone_side_by_side(matcher_env, tmp_path):
    pytest.importorskip("resemblyzer")
    out = tmp_path / "eval-audio"
    result = run_cli("eval", "bob", "--converter", "matcher", "--json", "-o", str(out), "--seed", "1", env=matcher_env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["voice"] == "bob" and report["baseline"] == "base"
    assert [s["label"] for s in report["speakers"]] == ["base", "clone (matcher)"]
    for speaker in report["speakers"]:
        assert 0 <= speaker["similarity"] <= 1 and speaker["wer"] >= 0
        assert len(speaker["similarity_per_sentence"]) == len(report["sentences"]) == len(speaker["transcripts"])
    assert report["ceiling"] is None or 0 < report["ceiling"] <= 1
    assert isinstance(report["verdict"], str) and "clone (matcher)" in report["verdict"]
    assert len(list(out.glob("base-*.wav"))) == len(report["sentences"])
    assert len(list(out.glob("clone-matcher-*.wav"))) == len(report["sentences"])


def test_eval_bad_inputs_are_one_line(matcher_env, tmp_path):
    assert "no voice named 'ghost'" in error_line(run_cli("eval", "ghost", env=matcher_env))
    voices = tmp_path / "voices"
    shutil.copytree(matcher_env["VOICECLONE_VOICES_DIR"] / "bob", voices / "bob")
    (voices / "bob" / "speech.flac").unlink()
    line = error_line(run_cli("eval", "bob", env={**matcher_env, "VOICECLONE_VOICES_DIR": voices}))
    assert "bob" in line and "speech.flac" in line
    assert "not a folder" in error_line(
        run_cli("eval", "bob", "-o", str(voices / "bob" / "voice.json"), "--converter", "matcher", env=matcher_env)
    )


def test_a_cache_that_cannot_be_written_is_one_warning_line_and_the_speech_is_made(matcher_env, tmp_path):
    not_a_folder = tmp_path / "cache-file"
    not_a_folder.write_text("x")
    env = {**matcher_env, "VOICECLONE_CACHE_DIR": not_a_folder}
    result = run_cli("speak", "Hi there.", "--voice", "bob", "-o", str(tmp_path / "o.wav"), env=env)
    assert result.returncode == 0, result.stderr
    assert "warning: cannot cache the base-voice profile in" in result.stderr  # as the CLI's own warnings
    assert "WARNING" not in result.stderr and (tmp_path / "o.wav").is_file()


def test_eval_keeps_its_audio_out_of_the_voice_library(matcher_env):
    inside = matcher_env["VOICECLONE_VOICES_DIR"] / "bob" / "clips"
    assert "is inside the voice library" in error_line(run_cli("eval", "bob", "-o", str(inside), env=matcher_env))
    assert not inside.exists()
