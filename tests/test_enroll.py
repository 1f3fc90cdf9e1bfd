"""`voiceclone enroll` and `voiceclone voices ...`: what works, every bad input, and the library's safety."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cli_helpers import error_line, run_cli

from voiceclone.audio.reader import AudioError
from voiceclone.cloning.enrollment import enroll, prepare
from voiceclone.cloning.openvoice_conversion import OpenVoiceConversion, embed, embedding_for
from voiceclone.files import StorageError
from voiceclone.openvoice.converter import ToneColorConverter
from voiceclone.voices import store as voices_module
from voiceclone.voices.errors import VoiceError
from voiceclone.voices.names import check_name
from voiceclone.voices.store import VoiceLibrary


def cli(*args: str, models_dir: Path | None = None, stdin: str | None = None):
    return run_cli(*args, env={"VOICECLONE_MODELS_DIR": models_dir} if models_dir else None, stdin=stdin, timeout=180)


def library_state(root: Path) -> dict[str, bytes]:
    """Every file under the library, for before/after comparisons."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def converter(tiny_v2):
    return OpenVoiceConversion(ToneColorConverter.load(tiny_v2[0], device="cpu"))


# ------------------------------------------------------------------------------------------ the happy paths
def test_enroll_from_the_command_line(tmp_path, models_dir, recordings):
    lib = tmp_path / "voices"
    result = cli(
        "enroll",
        str(recordings["alice"]),
        "--voices-dir",
        str(lib),
        "--consent",
        "Alice agreed on tape",
        models_dir=models_dir,
    )
    assert result.returncode == 0, result.stderr
    assert "enrolled 'alice'" in result.stdout and "speech" in result.stdout
    meta = json.loads((lib / "alice" / "voice.json").read_text())
    assert meta["name"] == "alice" and meta["consent"]["text"] == "Alice agreed on tape"
    assert meta["consent"]["kind"] == "text" and meta["consent"]["verified"] is False  # recorded as unverified text
    assert meta["converter"]["version"] == "v2" and len(meta["converter"]["checkpoint_sha256"]) == 64
    assert meta["sources"][0]["file"] == "alice.wav" and meta["sources"][0]["sample_rate"] == 44100
    assert len(meta["sources"][0]["sha256"]) == 64 and meta["sources"][0]["duration_s"] == pytest.approx(8.0, abs=0.01)
    assert 5.0 < meta["speech_seconds"] <= 8.0
    assert np.load(lib / "alice" / "embedding-v2.npy").shape == (1, 16, 1)
    speech, sr = sf.read(lib / "alice" / "speech.flac")
    assert sr == 22050 and len(speech) / sr == pytest.approx(meta["speech_seconds"], abs=0.01)
    listed = cli("voices", "list", "--voices-dir", str(lib))
    assert listed.returncode == 0 and "alice" in listed.stdout
    shown = cli("voices", "show", "alice", "--voices-dir", str(lib))
    assert shown.returncode == 0 and "checkpoint_sha256" in shown.stdout


@pytest.mark.parametrize("fmt", ["bob", "carol", "dave"])
def test_every_format_and_rate_enrolls(tmp_path, converter, recordings, fmt):
    voice, sample = enroll(VoiceLibrary(tmp_path), [recordings[fmt]], converter)
    assert voice.name == fmt and sample.quality.speech_s > 5.0


def test_several_files_make_one_voice(tmp_path, converter, recordings):
    voice, sample = enroll(VoiceLibrary(tmp_path), [recordings["bob"], recordings["carol"]], converter, name="both")
    assert len(voice.record.sources) == 2 and sample.quality.speech_s > 10.0


def test_embedding_is_the_mean_over_ten_second_pieces(converter, recordings):
    sample = prepare([recordings["bob"], recordings["carol"], recordings["dave"]], 22050)
    pieces = np.array_split(sample.speech, round(len(sample.speech) / 22050 / 10))
    assert len(pieces) == 2
    assert np.allclose(embed(converter.converter, sample.speech), converter.converter.extract_se(pieces).numpy())


def test_a_default_name_from_an_odd_file_name(tmp_path, converter, recordings):
    odd = tmp_path / "My Voice (take 2).flac"
    odd.write_bytes(recordings["bob"].read_bytes())
    voice, _ = enroll(VoiceLibrary(tmp_path / "lib"), [odd], converter)
    assert voice.name == "My-Voice-take-2"
    from voiceclone.voices.names import default_name

    assert [default_name(n) for n in ("José.wav", "Ångström 2.wav", "张伟.wav")] == ["Jose", "Angstrom-2", "voice"]


# --------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "key,needle",
    [
        ("missing", "not found"),
        ("folder", "is a folder"),
        ("empty", "empty"),
        ("notes", "not a readable audio file"),
        ("cut_wav", "truncated"),
        ("cut_flac", "the file is truncated or damaged"),
        ("nan", "NaN"),
        ("silence", "no speech"),
        ("hum", "no speech"),
        ("short", "at least 3 s"),
    ],
)
def test_bad_recordings_are_one_line_errors_and_leave_no_trace(tmp_path, models_dir, recordings, key, needle):
    path = recordings.get(key, recordings["bob"].parent / "nope.wav")
    lib = tmp_path / "voices"
    result = cli("enroll", str(path), "--name", "x", "--voices-dir", str(lib), models_dir=models_dir)
    assert needle in error_line(result)
    assert library_state(lib) == {} and (not lib.exists() or list(lib.iterdir()) == [])


@pytest.mark.parametrize("name", ["", "a/b", "..", ".hidden", "x" * 65, "two words", "-dash", "a..b"])
def test_bad_names_are_refused(tmp_path, models_dir, recordings, name):
    result = cli("enroll", str(recordings["bob"]), "--name", name, "--voices-dir", str(tmp_path), models_dir=models_dir)
    assert "bad voice name" in error_line(result)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--consent", "she agreed", "--consent-phrase"], "give the consent one way"),
        (["--consent", "she agreed", "--consent-audio", "{bob}"], "give the consent one way"),
        (["--consent-phrase", "--consent-audio", "{bob}"], "give the spoken consent once"),
        (["--consent", ""], "--consent needs the consent as text"),  # an empty $CONSENT in a script
        (["--speaker", "Bob"], "--speaker names who reads the consent sentence"),  # and no spoken consent
    ],
)
def test_consent_given_two_ways_is_refused_not_half_ignored(tmp_path, models_dir, recordings, extra, needle):
    extra = [a.format(bob=recordings["bob"]) for a in extra]
    lib = tmp_path / "voices"
    result = cli("enroll", str(recordings["bob"]), *extra, "--voices-dir", str(lib), models_dir=models_dir)
    assert needle in error_line(result)
    assert not lib.exists() or list(lib.iterdir()) == []


def test_no_converter_installed_says_how_to_get_one(tmp_path, recordings):
    result = cli(
        "enroll",
        str(recordings["bob"]),
        "--voices-dir",
        str(tmp_path / "v"),
        "--converter",
        "openvoice",  # `auto` would fall back to the built-in matcher
        models_dir=tmp_path / "no-models",
    )
    assert "voiceclone models download" in error_line(result)


def test_existing_name_needs_force_and_force_replaces(tmp_path, models_dir, recordings):
    lib = tmp_path / "voices"
    assert (
        cli("enroll", str(recordings["bob"]), "--name", "v", "--voices-dir", str(lib), models_dir=models_dir).returncode
        == 0
    )
    before = library_state(lib)
    again = cli("enroll", str(recordings["carol"]), "--name", "v", "--voices-dir", str(lib), models_dir=models_dir)
    assert "already exists" in error_line(again)
    assert library_state(lib) == before
    forced = cli(
        "enroll", str(recordings["carol"]), "--name", "v", "--force", "--voices-dir", str(lib), models_dir=models_dir
    )
    assert forced.returncode == 0, forced.stderr
    meta = json.loads((lib / "v" / "voice.json").read_text())
    assert meta["sources"][0]["file"] == "carol.ogg"
    assert sorted(p.name for p in lib.iterdir()) == ["v"]


def test_quality_warnings(recordings, tmp_path):
    speech, sr = sf.read(recordings["bob"], dtype="float32")
    rng = np.random.default_rng(0)
    cases = {
        "quiet": speech * 0.004,
        "noisy": speech + 0.08 * rng.standard_normal(len(speech)).astype(np.float32),
        "clipped": np.clip(speech * 8, -1, 1),
        "mostly silent": np.concatenate([np.zeros(sr * 25, np.float32), speech]),
    }
    for word, audio in cases.items():
        path = tmp_path / f"{word}.wav"
        sf.write(path, audio, sr, subtype="FLOAT")
        warnings = prepare([path], 22050).quality.warnings()
        assert any(w.startswith(word.split()[0] if word != "quiet" else "very quiet") for w in warnings), (
            word,
            warnings,
        )
    assert prepare([recordings["bob"]], 22050).quality.warnings() == []
    assert prepare([recordings["bob"], recordings["dave"]], 22050).warnings() == []
    short = "s of speech: 10 s or more gives a better clone"  # bob has about 8 s
    (alone,) = prepare([recordings["bob"]], 22050).warnings()
    assert alone.startswith("only ") and alone.endswith(short)
    twice = prepare([recordings["bob"], recordings["bob"], recordings["silence"]], 22050).warnings()
    assert twice[0] == "silence.wav: no speech found in it (left out)" and twice[1].endswith(short)
    assert twice[2:] == ["bob.flac: the same recording as one given before (used once)"]
    import soxr

    phone = tmp_path / "phone.wav"
    sf.write(phone, soxr.resample(speech, sr, 8000), 8000)
    assert [w for w in prepare([phone], 22050).warnings() if "telephone quality" in w] == [
        "phone.wav: recorded at 8000 Hz (telephone quality): nothing of the voice above 4 kHz is in it, so the "
        "clone will sound muffled; record at 16 kHz or more"
    ]


# -------------------------------------------------------------------------------- atomicity and concurrency
def test_a_failure_mid_write_leaves_no_voice_and_no_debris(tmp_path, converter, recordings, monkeypatch):
    lib = VoiceLibrary(tmp_path)

    def fail(*args, **kwargs):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(voices_module, "_write_record", fail)
    with pytest.raises(StorageError, match="injected"):  # one line naming the voice's folder
        enroll(lib, [recordings["bob"]], converter, name="v")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_replacement_keeps_the_old_voice(tmp_path, converter, recordings, monkeypatch):
    lib = VoiceLibrary(tmp_path)
    enroll(lib, [recordings["bob"]], converter, name="v")
    before = library_state(tmp_path)
    monkeypatch.setattr(voices_module, "_write_npy", lambda *a: (_ for _ in ()).throw(OSError("injected")))
    with pytest.raises(StorageError):
        enroll(lib, [recordings["carol"]], converter, name="v", force=True)
    assert library_state(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["v"]


def test_an_interrupted_replacement_is_recovered(tmp_path, converter, recordings):
    lib = VoiceLibrary(tmp_path)
    enroll(lib, [recordings["bob"]], converter, name="v")
    (tmp_path / "v").rename(tmp_path / ".replaced-v")  # as if killed between the two renames
    assert lib.names() == ["v"] and lib.get("v").record.name == "v"


def test_two_enrolls_at_once_both_succeed(tmp_path, models_dir, recordings):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECLONE_")}
    env["VOICECLONE_MODELS_DIR"] = str(models_dir)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "voiceclone",
                "enroll",
                str(recordings[src]),
                "--name",
                name,
                "--voices-dir",
                str(tmp_path),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for src, name in (("bob", "one"), ("dave", "two"))
    ]
    for p in procs:
        _, stderr = p.communicate(timeout=180)
        assert p.returncode == 0, stderr
    assert VoiceLibrary(tmp_path).names() == ["one", "two"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]


# ------------------------------------------------------------------------------------------- library ops
def test_rename_remove_and_confirmation(tmp_path, converter, recordings):
    enroll(VoiceLibrary(tmp_path), [recordings["bob"]], converter, name="old")
    assert cli("voices", "rename", "old", "new", "--voices-dir", str(tmp_path)).returncode == 0
    assert json.loads((tmp_path / "new" / "voice.json").read_text())["name"] == "new"
    assert "no voice named 'old'" in error_line(cli("voices", "show", "old", "--voices-dir", str(tmp_path)))
    refused = cli("voices", "rm", "new", "--voices-dir", str(tmp_path), stdin="")
    assert "--yes" in error_line(refused) and (tmp_path / "new").exists()
    assert cli("voices", "rm", "new", "--yes", "--voices-dir", str(tmp_path)).returncode == 0
    assert list(tmp_path.iterdir()) == []
    assert "no voice named" in error_line(cli("voices", "rm", "new", "--yes", "--voices-dir", str(tmp_path)))


def test_rename_onto_an_existing_voice_is_refused(tmp_path, converter, recordings):
    lib = VoiceLibrary(tmp_path)
    enroll(lib, [recordings["bob"]], converter, name="a")
    enroll(lib, [recordings["dave"]], converter, name="b")
    before = library_state(tmp_path)
    assert "already exists" in error_line(cli("voices", "rename", "a", "b", "--voices-dir", str(tmp_path)))
    assert "bad voice name" in error_line(cli("voices", "rename", "a", "../b", "--voices-dir", str(tmp_path)))
    assert library_state(tmp_path) == before


def test_export_import_round_trip(tmp_path, converter, recordings):
    src = VoiceLibrary(tmp_path / "here")
    enroll(src, [recordings["bob"]], converter, name="bob", consent="yes")
    archive = tmp_path / "bob.tar.gz"
    assert cli("voices", "export", "bob", str(archive), "--voices-dir", str(src.root)).returncode == 0
    dst = tmp_path / "there"
    assert cli("voices", "import", str(archive), "--voices-dir", str(dst)).returncode == 0
    assert library_state(dst) == library_state(src.root)
    renamed = cli("voices", "import", str(archive), "--name", "bob2", "--voices-dir", str(dst))
    assert renamed.returncode == 0 and json.loads((dst / "bob2" / "voice.json").read_text())["name"] == "bob2"
    assert "already exists" in error_line(cli("voices", "import", str(archive), "--voices-dir", str(dst)))


def _archive(path: Path, entries: list[tuple[str, bytes | None, str]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            if kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            else:
                info.size = len(data or b"")
                tar.addfile(info, io.BytesIO(data or b""))
    return path


@pytest.mark.parametrize(
    "entries,needle",
    [
        ([("../evil/voice.json", b"{}", "file")], "outside"),
        ([("/tmp/evil/voice.json", b"{}", "file")], "outside"),
        ([("v/voice.json", None, "symlink")], "link"),
        ([("v/voice.json", b"{}", "file"), ("v/run.sh", b"#!/bin/sh", "file")], "unexpected entry"),
        ([("v/voice.json", b"{}", "file"), ("w/voice.json", b"{}", "file")], "more than one voice"),
        ([("v/voice.json", b"not json", "file"), ("v/speech.flac", b"x", "file")], "damaged"),
        ([("v/speech.flac", b"x", "file")], "no voice.json"),
        ([("v/a/b/voice.json", b"{}", "file")], "outside"),
    ],
)
def test_hostile_or_broken_archives_are_refused(tmp_path, entries, needle):
    archive = _archive(tmp_path / "evil.tar.gz", entries)
    lib = tmp_path / "lib"
    assert needle in error_line(cli("voices", "import", str(archive), "--voices-dir", str(lib)))
    assert library_state(lib) == {}
    assert not (tmp_path / "evil").exists() and not Path("/tmp/evil").exists()


@pytest.mark.parametrize("name", ["voice.tar.gz", "take.wav"])
def test_not_an_archive(tmp_path, recordings, name):
    bogus = tmp_path / name
    if name.endswith(".wav"):  # an audio file given to import by mistake: tarfile's reason is four lines long
        bogus.write_bytes(recordings["alice"].read_bytes())
    else:
        bogus.write_text("hello")
    line = error_line(cli("voices", "import", str(bogus), "--voices-dir", str(tmp_path / "l")))
    assert "not a voice archive (one is made by `voiceclone voices export`)" in line


def test_a_multi_line_reason_is_folded_into_the_error_line():
    from voiceclone.cli.common import one_line

    reason = "x: could not be opened:\n- method gz: ReadError('not a gzip file')\n\n- method tar: ReadError('bad')"
    folded = "x: could not be opened: method gz: ReadError('not a gzip file'); method tar: ReadError('bad')"
    assert one_line(reason) == folded


def test_embedding_with_a_forged_pickle_is_refused(tmp_path, converter, recordings):
    src = VoiceLibrary(tmp_path / "here")
    voice, _ = enroll(src, [recordings["bob"]], converter, name="bob")
    import pickle

    (voice.folder / "embedding-v2.npy").write_bytes(pickle.dumps({"a": 1}))
    archive = src.export("bob", tmp_path / "bob.tar.gz")
    assert "embedding-v2.npy" in error_line(
        cli("voices", "import", str(archive), "--voices-dir", str(tmp_path / "there"))
    )


# ---------------------------------------------------------------------------------------------- re-embedding
def test_a_voice_is_re_embedded_for_another_converter_version(tmp_path, converter, tiny_v1, recordings):
    lib = VoiceLibrary(tmp_path)
    voice, _ = enroll(lib, [recordings["bob"]], converter, name="bob")
    v1 = ToneColorConverter.load(tiny_v1[0], device="cpu")
    emb = embedding_for(lib, voice, v1)
    stored = lib.get("bob")
    assert (stored.folder / "embedding-v1.npy").is_file()
    assert stored.record.embeddings["v1"].checkpoint_sha256 == v1.checkpoint_sha256
    speech, _ = voice.speech()
    assert np.allclose(emb, embed(v1, speech), atol=1e-6)
    assert np.array_equal(embedding_for(lib, stored, converter.converter), voice.embedding("v2"))  # v2 untouched


def test_check_name_accepts_reasonable_names():
    for name in ("alice", "Bob_2", "voice.v1", "a-b"):
        assert check_name(name) == name
    with pytest.raises(VoiceError):
        check_name("a b")


def test_audio_error_is_a_user_error():
    from voiceclone.errors import UserError

    assert issubclass(AudioError, UserError) and issubclass(VoiceError, UserError)


def test_an_imported_spoken_consent_without_a_speaker_check_is_shown_as_such(tmp_path, converter, recordings):
    """A record made elsewhere (or before the speaker check) says so on import and in `voices show`."""
    words_only = {"kind": "spoken", "verified": True, "wer": 0.0, "threshold": 0.25, "score": 1.0, "source": "x"}
    src = VoiceLibrary(tmp_path / "here")
    enroll(src, [recordings["bob"]], converter, name="bob", consent=words_only)
    archive = tmp_path / "bob.tar.gz"
    assert cli("voices", "export", "bob", str(archive), "--voices-dir", str(src.root)).returncode == 0
    imported = cli("voices", "import", str(archive), "--voices-dir", str(tmp_path / "there"))
    assert imported.returncode == 0 and "speaker not checked" in imported.stdout + imported.stderr
    shown = cli("voices", "show", "bob", "--voices-dir", str(tmp_path / "there"))
    assert "speaker not checked" in shown.stdout + shown.stderr
