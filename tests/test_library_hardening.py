"""The voice library under stress (issue 9): full disks, damaged voices, cut archives, size limits, file modes,
matcher profiles, and processes changing the same voice at once."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import multiprocessing
import os
import pickle
import shutil
import subprocess
import tarfile
import traceback
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cli_helpers import error_line, run_cli

from voiceclone.files import StorageError, storage_error
from voiceclone.speak import sinks as speaking
from voiceclone.speak.run import speak_to
from voiceclone.speak.sinks import WavSink
from voiceclone.voices import archive as archive_module
from voiceclone.voices import store as voices_module
from voiceclone.voices.errors import VoiceError
from voiceclone.voices.folder import Voice
from voiceclone.voices.names import MAX_SAMPLE_RATE, MAX_SPEECH_S, MAX_VOICE_BYTES
from voiceclone.voices.record import EmbeddingEntry, ProfileEntry, VoiceRecord
from voiceclone.voices.store import VoiceLibrary

SR = 22050


def make_voice(
    lib: VoiceLibrary,
    name: str,
    seconds: float = 1.0,
    seed: int = 0,
    force: bool = False,
    sr: int = SR,
    level: float = 0.1,
) -> Voice:
    """A voice saved straight into the library: noise for speech (no VAD, no converter needed)."""
    rng = np.random.default_rng(seed)
    speech = np.clip(level * rng.standard_normal(int(seconds * sr)), -1, 1).astype(np.float32)
    embedding = rng.standard_normal((1, 16, 1)).astype(np.float32)
    record = VoiceRecord(
        name=name, created=f"seed {seed}", speech_seconds=seconds, embeddings={"v2": EmbeddingEntry.of("v2", None)}
    )
    return lib.save(name, record, speech, sr, {"v2": embedding}, force=force)


def library_state(root: Path) -> dict[str, bytes]:
    """Every file under the library, for before/after comparisons."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def hidden(root: Path) -> list[str]:
    """Lock files, staging, parked or half-deleted folders left in the library."""
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".")) if root.exists() else []


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "injected")


@pytest.fixture
def lib(tmp_path) -> VoiceLibrary:
    return VoiceLibrary(tmp_path / "voices")


@pytest.fixture
def tiny_disk(tmp_path):
    """A 200 KiB tmpfs: a disk that really fills up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"mounting a small tmpfs is not permitted here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def _full_device(monkeypatch, module, tmp_path: Path) -> None:
    """Make `module.create_temp` hand out /dev/full, where every write fails with ENOSPC, as a full disk does."""
    if not Path("/dev/full").exists():
        pytest.skip("/dev/full is not available")

    def create_temp(folder, prefix, suffix=""):
        return os.open("/dev/full", os.O_WRONLY), tmp_path / f"{prefix}never-made{suffix}"

    monkeypatch.setattr(module, "create_temp", create_temp)


def _tones(seconds: float):
    return lambda sentence: iter([np.full(int(SR * seconds), 0.1, dtype=np.float32)])


# ------------------------------------------------------------------------------------------------ full disks
@pytest.mark.parametrize(
    "code,words",
    [
        (errno.ENOSPC, "no space left on device writing"),
        (errno.EDQUOT, "disk quota exceeded writing"),
        (errno.EROFS, "read-only file system writing"),
        (errno.EACCES, "permission denied writing"),
    ],
)
def test_disk_errors_read_as_one_line(code, words):
    error = storage_error(OSError(code, os.strerror(code)), "/x/out.wav")
    assert str(error).startswith(f"{words} /x/out.wav: ") and "\n" not in str(error)
    assert storage_error(OSError(errno.EIO, "I/O error"), "/x") is None  # not the user's to fix: raised as is


def test_wav_output_is_plain_pcm16_equal_to_raw_output(tmp_path):
    rng = np.random.default_rng(4)
    chunks = [np.clip(0.3 * rng.standard_normal(n), -1, 1).astype(np.float32) for n in (1000, 1, 22050, 777)]
    raw = io.BytesIO()
    speak_to(["a"], lambda sentence: iter(chunks), SR, [WavSink(tmp_path / "out.wav", SR), speaking.RawSink(raw)], SR)
    info = sf.info(tmp_path / "out.wav")
    assert (info.format, info.subtype, info.samplerate, info.channels, info.frames) == ("WAV", "PCM_16", SR, 1, 23828)
    assert (tmp_path / "out.wav").read_bytes()[44:] == raw.getvalue()
    assert np.allclose(sf.read(tmp_path / "out.wav", dtype="float32")[0], np.concatenate(chunks), atol=1 / 32767)


def test_speaking_to_a_full_disk(tmp_path, monkeypatch):
    out = tmp_path / "out.wav"
    out.write_bytes(b"the old file")
    _full_device(monkeypatch, speaking, tmp_path)
    with pytest.raises(StorageError) as caught:
        speak_to(["one", "two"], _tones(1.0), SR, [WavSink(out, SR)], SR)
    assert str(caught.value) == f"no space left on device writing {out}: free some space and try again"
    assert out.read_bytes() == b"the old file" and sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]


def test_speaking_to_a_disk_that_really_fills(tiny_disk):
    out = tiny_disk / "out.wav"
    out.write_bytes(b"the old file")
    with pytest.raises(StorageError, match=f"no space left on device writing {out}"):
        speak_to(["a long one"], _tones(10.0), SR, [WavSink(out, SR)], SR)  # 441 KB into 200 KiB
    assert out.read_bytes() == b"the old file" and [p.name for p in tiny_disk.iterdir()] == ["out.wav"]
    speak_to(["short"], _tones(0.5), SR, [WavSink(out, SR)], SR)  # the space came back
    assert sf.info(out).frames == SR // 2


@pytest.mark.parametrize("name", ["out.flac", "out.ogg", "out.mp3"])
def test_encoded_output_to_a_full_disk_is_one_line(tmp_path, monkeypatch, name):
    out = tmp_path / name
    out.write_bytes(b"the old file")
    _full_device(monkeypatch, speaking, tmp_path)
    with pytest.raises(StorageError) as caught:
        speak_to(["one", "two"], _tones(1.0), SR, [speaking.file_sink(out, SR)], SR)
    assert str(caught.value) == f"no space left on device writing {out}: free some space and try again"
    assert out.read_bytes() == b"the old file" and sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("name", ["out.flac", "out.mp3"])
def test_encoded_output_to_a_disk_that_really_fills(tiny_disk, name):
    out = tiny_disk / name
    out.write_bytes(b"the old file")
    with pytest.raises(StorageError, match=f"no space left on device writing {out}"):
        noise = np.random.default_rng(0).uniform(-0.3, 0.3, SR * 60).astype(np.float32)  # encoders can't shrink it
        speak_to(["a long one"], lambda sentence: iter([noise]), SR, [speaking.file_sink(out, SR)], SR)
    assert out.read_bytes() == b"the old file" and [p.name for p in tiny_disk.iterdir()] == [name]


def test_enrolling_onto_a_full_disk_keeps_the_old_voice(lib, monkeypatch):
    make_voice(lib, "v", seed=1)
    before = library_state(lib.root)
    monkeypatch.setattr(voices_module, "write_durable", enospc)
    with pytest.raises(StorageError) as caught:
        make_voice(lib, "v", seed=2, force=True)
    assert str(caught.value) == f"no space left on device writing {lib.root / 'v'}: free some space and try again"
    assert library_state(lib.root) == before and hidden(lib.root) == []


def test_a_library_on_a_disk_that_really_fills(tiny_disk):
    lib = VoiceLibrary(tiny_disk / "voices")
    make_voice(lib, "v", seconds=0.5, seed=1)
    before = library_state(lib.root)
    with pytest.raises(StorageError, match="no space left on device writing"):
        make_voice(lib, "v", seconds=10.0, seed=2, force=True)  # ~700 KB of FLAC
    assert library_state(lib.root) == before and hidden(lib.root) == []
    assert lib.get("v").record.created == "seed 1"


def test_exporting_to_a_full_disk(lib, tmp_path, monkeypatch):
    make_voice(lib, "v")
    archive = tmp_path / "v.tar.gz"
    archive.write_bytes(b"the old archive")
    _full_device(monkeypatch, archive_module, tmp_path)
    with pytest.raises(StorageError, match=f"no space left on device writing {archive}: free some space"):
        lib.export("v", archive, force=True)
    assert archive.read_bytes() == b"the old archive"


def test_exporting_onto_an_existing_file_needs_force(lib, tmp_path):
    make_voice(lib, "v")
    recording = tmp_path / "v.wav"  # `voices export v v.wav`: the name of the recording, by habit
    recording.write_bytes(b"RIFF a precious recording")
    for force in (False, True):
        with pytest.raises(VoiceError, match="exported as a .tar.gz archive; name it v.voice.tar.gz"):
            lib.export("v", recording, force=force)
    assert recording.read_bytes() == b"RIFF a precious recording"
    with pytest.raises(VoiceError, match="exported as a .tar.gz archive"):
        lib.export("v", tmp_path / "v.zip")  # it would be a .tar.gz under another name
    old = tmp_path / "v.tar.gz"
    old.write_bytes(b"an older export")
    with pytest.raises(VoiceError, match="already exists; give another file name, or --force to replace it"):
        lib.export("v", old)
    assert old.read_bytes() == b"an older export"
    assert lib.export("v", old, force=True) == old and tarfile.is_tarfile(old)
    assert tarfile.is_tarfile(lib.export("v", tmp_path / "plain"))  # no suffix at all: taken as given


def test_exporting_through_a_link_or_onto_a_device(lib, tmp_path):
    make_voice(lib, "v")
    real = tmp_path / "real.tar.gz"
    real.write_bytes(b"an old archive")
    link = tmp_path / "v.tar.gz"
    link.symlink_to(real)
    lib.export("v", link, force=True)
    assert link.is_symlink() and tarfile.is_tarfile(real)  # written through the link, the link kept
    with pytest.raises(StorageError, match="is not a plain file"):
        lib.export("v", Path(os.devnull), force=True)
    assert Path(os.devnull).is_char_device()


def test_standard_streams_are_no_archive(lib, tmp_path):
    """`-` means a standard stream to a user: export wrote a file named - (and nothing to the pipe)."""
    make_voice(lib, "v")
    line = error_line(run_cli("voices", "export", "v", "-", "--voices-dir", str(lib.root), cwd=tmp_path))
    assert "not written to standard output" in line and not (tmp_path / "-").exists()
    line = error_line(run_cli("voices", "import", "-", "--voices-dir", str(lib.root), cwd=tmp_path))
    assert "not read from standard input" in line


def test_exporting_to_a_disk_that_really_fills(lib, tiny_disk):
    make_voice(lib, "v", seconds=10.0)
    result = run_cli("voices", "export", "v", str(tiny_disk / "v.tar.gz"), "--voices-dir", str(lib.root))
    assert f"no space left on device writing {tiny_disk / 'v.tar.gz'}" in error_line(result)
    assert list(tiny_disk.iterdir()) == []


def test_importing_onto_a_full_disk_keeps_the_old_voice(lib, tmp_path, monkeypatch):
    other = VoiceLibrary(tmp_path / "other")
    make_voice(other, "v", seed=2)
    archive = other.export("v", tmp_path / "v.tar.gz")
    make_voice(lib, "v", seed=1)
    before = library_state(lib.root)
    monkeypatch.setattr(voices_module, "write_durable", enospc)
    with pytest.raises(StorageError, match="no space left on device writing"):
        lib.import_archive(archive, force=True)
    assert library_state(lib.root) == before and hidden(lib.root) == []


def test_importing_onto_a_disk_that_really_fills(tmp_path, tiny_disk):
    other = VoiceLibrary(tmp_path / "other")
    make_voice(other, "v", seconds=10.0)
    archive = other.export("v", tmp_path / "v.tar.gz")
    result = run_cli("voices", "import", str(archive), "--voices-dir", str(tiny_disk / "voices"))
    assert f"no space left on device writing {tiny_disk / 'voices' / 'v'}" in error_line(result)
    assert hidden(tiny_disk / "voices") == [] and library_state(tiny_disk / "voices") == {}


def test_importing_into_a_read_only_library(tmp_path, tiny_disk):
    other = VoiceLibrary(tmp_path / "other")
    make_voice(other, "v")
    archive = other.export("v", tmp_path / "v.tar.gz")
    (tiny_disk / "voices").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    with pytest.raises(StorageError, match="read-only file system writing"):
        VoiceLibrary(tiny_disk / "voices").import_archive(archive)
    subprocess.run(["mount", "-o", "remount,rw", str(tiny_disk)], check=True)


# ---------------------------------------------------------------------------------------------- damaged voices
def _cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGE = {
    "json not json": (lambda v: (v / "voice.json").write_text("{not json"), "voice.json is not valid JSON"),
    "json a list": (lambda v: (v / "voice.json").write_text("[1, 2]"), "voice.json is not a voice description"),
    "json missing": (lambda v: (v / "voice.json").unlink(), "voice.json is missing"),
    "json odd embeddings": (
        lambda v: (v / "voice.json").write_text('{"embeddings": ["v2"]}'),
        "voice.json is not a voice description",
    ),
    "speech cut": (lambda v: _cut(v / "speech.flac"), "speech.flac"),
    "speech garbage": (lambda v: (v / "speech.flac").write_bytes(b"x" * 5000), "speech.flac cannot be decoded"),
    "speech missing": (lambda v: (v / "speech.flac").unlink(), "speech.flac is missing"),
}

# Files made from the kept speech: damaged, they are as good as missing (made again when needed), never the voice's
# damage: removing the voice for them would lose its consent record.
DERIVED_DAMAGE = {
    "embedding garbage": lambda v: (v / "embedding-v2.npy").write_bytes(b"junk"),
    "embedding pickle": lambda v: (v / "embedding-v2.npy").write_bytes(pickle.dumps({"a": 1})),
    "embedding shape": lambda v: np.save(v / "embedding-v2.npy", np.zeros((3, 3), np.float32)),
    "profile a list": lambda v: (v / "profile-m2.json").write_text("[]"),
    "profile not json": lambda v: (v / "profile-m2.json").write_text("garbage"),
}


@pytest.mark.parametrize("kind", sorted(DERIVED_DAMAGE))
def test_a_damaged_embedding_or_profile_counts_as_missing(lib, kind):
    make_voice(lib, "v")
    DERIVED_DAMAGE[kind](lib.root / "v")
    assert [(e.name, e.ok) for e in lib.scan()] == [("v", True)]
    voice = lib.get("v")
    assert voice.embedding("v2") is None if "embedding" in kind else voice.profile("m2") is None


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_one_damaged_voice_does_not_break_the_library(lib, kind):
    for name in ("a", "b", "c"):
        make_voice(lib, name, seed=ord(name))
    damage, problem = DAMAGE[kind]
    damage(lib.root / "b")
    entries = lib.scan()
    assert [(e.name, e.ok) for e in entries] == [("a", True), ("b", False), ("c", True)]
    assert problem in entries[1].problem and entries[1].voice is None and entries[0].voice.name == "a"
    assert lib.names() == ["a", "b", "c"] and lib.exists("b")
    with pytest.raises(VoiceError) as caught:
        lib.get("b")
    message = str(caught.value)
    assert f"voice 'b' in {lib.root} is damaged (" in message and problem in message
    assert message.endswith("remove it with `voiceclone voices rm b --yes` and enroll it again")
    assert lib.get("a").record.created == f"seed {ord('a')}"
    lib.remove("b")
    assert [e.name for e in lib.scan()] == ["a", "c"] and not (lib.root / "b").exists()


def test_reading_a_damaged_file_of_a_voice_in_hand(lib):
    voice = make_voice(lib, "v")
    _cut(voice.folder / "speech.flac")
    with pytest.raises(VoiceError, match=r"voice 'v' .* is damaged \(speech.flac .*voices rm v --yes"):
        voice.speech()
    (voice.folder / "embedding-v2.npy").write_bytes(b"junk")
    assert voice.embedding("v2") is None  # made again from the speech when needed
    (voice.folder / "speech.flac").unlink()
    with pytest.raises(VoiceError, match=r"is damaged \(speech.flac is missing\)"):
        voice.speech()


def test_a_damaged_voice_on_the_command_line(lib):
    make_voice(lib, "v")
    (lib.root / "v" / "voice.json").write_text("{")
    line = error_line(run_cli("voices", "show", "v", "--voices-dir", str(lib.root)))
    assert "is damaged (voice.json is not valid JSON)" in line and "voiceclone voices rm v --yes" in line


def test_a_file_given_as_the_library_is_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    lib = VoiceLibrary(tmp_path / "notes.txt")
    for action in (lib.names, lib.scan, lambda: make_voice(lib, "v"), lambda: lib.remove("v")):
        with pytest.raises(VoiceError, match="notes.txt: not a folder; give the voice library's folder"):
            action()
    assert (tmp_path / "notes.txt").read_text() == "x"


def test_folders_that_are_not_voices_are_ignored(lib):
    make_voice(lib, "v")
    (lib.root / "notes").mkdir()
    (lib.root / "notes" / "todo.txt").write_text("x")
    (lib.root / "README").write_text("x")
    assert lib.names() == ["v"] and [e.name for e in lib.scan()] == ["v"]


# ------------------------------------------------------------------------------------------- cut archives
@pytest.mark.parametrize("mode,suffix", [("w:gz", "tar.gz"), ("w:xz", "tar.xz"), ("w", "tar")])
@pytest.mark.parametrize("cut", ["half", "two thirds", "last byte", "trailer", "flipped byte"])
def test_a_truncated_or_corrupt_archive_says_so(lib, tmp_path, mode, suffix, cut):
    make_voice(VoiceLibrary(tmp_path / "src"), "v", seconds=2.0)
    archive = tmp_path / f"v.{suffix}"
    with tarfile.open(archive, mode) as tar:
        for path in sorted((tmp_path / "src" / "v").iterdir()):
            tar.add(path, arcname=f"v/{path.name}")
    data = bytearray(archive.read_bytes())
    end = {
        "half": len(data) // 2,
        "two thirds": len(data) * 2 // 3,
        "last byte": len(data) - 1,
        "trailer": len(data) - 6,
        "flipped byte": len(data),
    }[cut]
    if cut == "flipped byte":
        data[len(data) // 2] ^= 0xFF
    if mode == "w" and cut in ("last byte", "trailer"):
        pytest.skip("a plain tar ends in zero padding: removing some of it loses nothing")
    if mode == "w" and cut == "flipped byte":
        pytest.skip("a plain tar has no checksum over file data (the FLAC's own check is tested elsewhere)")
    archive.write_bytes(bytes(data[:end]))
    with pytest.raises(VoiceError, match="truncated or corrupt|damaged"):
        lib.import_archive(archive)
    assert library_state(lib.root) == {} and hidden(lib.root) == []


def test_a_truncated_archive_on_the_command_line_is_not_aborted(lib, tmp_path):
    make_voice(lib, "v", seconds=2.0)
    archive = lib.export("v", tmp_path / "v.tar.gz")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    result = run_cli("voices", "import", str(archive), "--voices-dir", str(tmp_path / "there"))
    assert "the archive is truncated or corrupt" in error_line(result) and "Aborted" not in result.stderr


# ------------------------------------------------------------------------------------------------- limits
def test_the_largest_voice_enroll_can_make_exports_and_imports(tmp_path):
    """Full-scale noise at the highest rate is the worst case for FLAC: still within what import accepts."""
    src = VoiceLibrary(tmp_path / "src")
    voice = make_voice(src, "big", seconds=MAX_SPEECH_S, sr=MAX_SAMPLE_RATE, level=0.5)
    src.add_profile(voice, "m1", {"bands": list(range(20000))})
    archive = src.export("big", tmp_path / "big.tar.gz")
    size = sum(p.stat().st_size for p in (src.root / "big").iterdir())
    assert size > 0.9 * MAX_SPEECH_S * MAX_SAMPLE_RATE * 3  # the speech did not compress: a true worst case
    dst = VoiceLibrary(tmp_path / "dst")
    dst.import_archive(archive)
    assert library_state(dst.root) == library_state(src.root)


def test_more_speech_than_a_voice_holds_is_a_programming_error(lib):
    with pytest.raises(ValueError, match="at most"):
        make_voice(lib, "v", seconds=MAX_SPEECH_S + 1, sr=8000)


def test_an_archive_larger_than_any_voice_is_refused(lib, tmp_path):
    archive = tmp_path / "huge.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, size in (("voice.json", 2), ("speech.flac", MAX_VOICE_BYTES)):
            info = tarfile.TarInfo(f"v/{name}")
            info.size = size
            tar.addfile(info, io.BytesIO(b"{}" if name == "voice.json" else bytes(size)))
    with pytest.raises(VoiceError, match="larger than a voice can be"):
        lib.import_archive(archive)


def test_an_oversized_old_voice_asks_to_be_enrolled_again(lib, tmp_path):
    make_voice(lib, "old")
    with open(lib.root / "old" / "speech.flac", "r+b") as fh:  # as an older version kept two hours of speech
        fh.truncate(MAX_VOICE_BYTES + 1)
    with pytest.raises(VoiceError, match="too large to export .* enroll it again"):
        lib.export("old", tmp_path / "old.tar.gz")
    assert not (tmp_path / "old.tar.gz").exists()


# ---------------------------------------------------------------------------------------------- file modes
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_outputs_follow_the_umask_and_voices_stay_private(lib, tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        speak_to(["x"], _tones(0.2), SR, [WavSink(tmp_path / "out.wav", SR)], SR)
        make_voice(lib, "v")
        lib.export("v", tmp_path / "v.tar.gz")
    finally:
        os.umask(old)
    assert (tmp_path / "out.wav").stat().st_mode & 0o777 == mode
    assert (tmp_path / "v.tar.gz").stat().st_mode & 0o777 == mode
    assert (lib.root / "v").stat().st_mode & 0o777 == 0o700  # a voice is biometric data


# ---------------------------------------------------------------------------------------------- profiles
def test_profiles_are_stored_recorded_and_carried(lib, tmp_path):
    voice = make_voice(lib, "v")
    assert voice.profile("m1") is None
    updated = lib.add_profile(voice, "m1", {"f0": [100.0, 2.5], "name": "ü"})
    assert updated.profile("m1") == {"f0": [100.0, 2.5], "name": "ü"}
    assert lib.get("v").record.profiles == {"m1": ProfileEntry(file="profile-m1.json")}
    assert lib.get("v").record.embeddings["v2"].file == "embedding-v2.npy"  # the rest of voice.json kept
    archive = lib.export("v", tmp_path / "v.tar.gz")
    with tarfile.open(archive) as tar:
        assert "v/profile-m1.json" in tar.getnames()
    there = VoiceLibrary(tmp_path / "there")
    assert there.import_archive(archive).profile("m1") == {"f0": [100.0, 2.5], "name": "ü"}
    with pytest.raises(ValueError):
        lib.add_profile(voice, "v1", {})
    with pytest.raises(ValueError):
        lib.add_profile(voice, "m2", [1, 2])
    with pytest.raises(ValueError):
        lib.add_profile(voice, "m2", {"x": "y" * (1024 * 1024)})
    assert hidden(lib.root) == []


@pytest.mark.parametrize("payload", [b"[1, 2]", b"{not json", b"{}" + b" " * (1024 * 1024)])
def test_an_archive_with_a_bad_profile_is_refused(lib, tmp_path, payload):
    make_voice(VoiceLibrary(tmp_path / "src"), "v")
    (tmp_path / "src" / "v" / "profile-m1.json").write_bytes(payload)
    archive = VoiceLibrary(tmp_path / "src").export("v", tmp_path / "v.tar.gz")
    with pytest.raises(VoiceError, match="profile-m1.json"):
        lib.import_archive(archive)
    assert library_state(lib.root) == {}


def test_files_for_a_voice_replaced_meanwhile_are_not_stored(lib):
    old = make_voice(lib, "v", seed=1)
    make_voice(lib, "v", seed=2, force=True)
    assert lib.add_profile(old, "m1", {"made from": "old speech"}) is old
    assert lib.add_embedding(old, "v1", np.ones((1, 16, 1), np.float32), None) is old
    assert sorted(p.name for p in (lib.root / "v").iterdir()) == ["embedding-v2.npy", "speech.flac", "voice.json"]
    lib.remove("v")
    assert lib.add_embedding(old, "v1", np.ones((1, 16, 1), np.float32), None) is old
    assert not (lib.root / "v").exists()


# ------------------------------------------------------------------------------------------ crash recovery
def test_debris_of_crashes_is_cleared_under_the_lock(lib):
    make_voice(lib, "v", seed=1)
    shutil.copytree(lib.root / "v", lib.root / ".replaced-v")  # cut short while deleting the replaced voice
    shutil.copytree(lib.root / "v", lib.root / ".removing-w-abc" / "w")  # cut short while deleting a voice
    make_voice(lib, "x", seed=2)
    (lib.root / "x").rename(lib.root / ".replaced-x")  # cut short between the two renames
    assert lib.names() == ["v", "x"] and hidden(lib.root) == []
    assert lib.get("x").record.created == "seed 2"


def test_the_lock_file_does_not_stay(lib):
    make_voice(lib, "a")
    lib.rename("a", "b")
    make_voice(lib, "a", force=True)
    lib.remove("b")
    assert sorted(p.name for p in lib.root.iterdir()) == ["a"]


# ------------------------------------------------------------------------------------ processes at once
# Workers run in fresh (spawned) processes; each reports ("ok", what, count) or ("error", what, traceback).
EXPECTED = ("no voice named", "already exists")  # what a loser of a race on one name may be told


def _worker(kind: str, root: str, tag: str, rounds: int, start, stop, results) -> None:
    try:
        lib = VoiceLibrary(root)
        if not start.wait(120):
            raise TimeoutError("never started")
        count = {"replace": _replacer, "cycle": _cycler, "read": _reader}[kind](lib, tag, rounds, stop)
        results.put(("ok", f"{kind} {tag}", count))
    except BaseException:
        results.put(("error", f"{kind} {tag}", traceback.format_exc()))


def _replacer(lib: VoiceLibrary, tag: str, rounds: int, stop) -> int:
    for i in range(rounds):
        make_voice(lib, "same", seconds=0.25, seed=i, force=True)
    return rounds


def _cycler(lib: VoiceLibrary, tag: str, rounds: int, stop) -> int:
    """Make, rename and remove a voice; a rival doing the same on the same names may win any step."""
    for i in range(rounds):
        for step in (
            lambda seed=i: make_voice(lib, tag, seconds=0.25, seed=seed, force=True),
            lambda: lib.rename(tag, f"{tag}-renamed"),
            lambda: lib.remove(f"{tag}-renamed"),
        ):
            try:
                step()
            except VoiceError as exc:
                if not any(expected in str(exc) for expected in EXPECTED):
                    raise
    return rounds


def _reader(lib: VoiceLibrary, names: str, rounds: int, stop) -> int:
    """List and read voices until told to stop: a voice may come and go, but is never seen damaged."""
    reads = 0
    while not stop.is_set() or reads < rounds:
        for entry in lib.scan():
            assert entry.ok, f"{entry.name} reported damaged: {entry.problem}"
        for name in names.split(","):
            with contextlib.suppress(VoiceError):
                lib.get(name)
            with contextlib.suppress(VoiceError):  # the damaged case is caught by scan; this one only must not crash
                lib.entry(name)
        reads += 1
    return reads


def _race(root: Path, writers: list[tuple[str, str, int]], read_names: str) -> list[tuple]:
    """Run writers and one reader at once; returns every report after all have ended."""
    ctx = multiprocessing.get_context("spawn")
    start, stop, results = ctx.Event(), ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(kind, str(root), tag, rounds, start, stop, results))
        for kind, tag, rounds in writers
    ]
    reader = ctx.Process(target=_worker, args=("read", str(root), read_names, 3, start, stop, results))
    for proc in [*procs, reader]:
        proc.start()
    start.set()
    reports = [results.get(timeout=600) for _ in procs]
    stop.set()
    reports.append(results.get(timeout=600))
    for proc in [*procs, reader]:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    return reports


def _assert_consistent(root: Path) -> None:
    assert hidden(root) == [], "a lock, staging, parked or half-deleted folder was left"
    for entry in VoiceLibrary(root).scan():
        assert entry.ok, entry.problem
        assert entry.voice.record.name == entry.name
        entry.voice.speech()


def test_two_processes_replacing_one_voice_while_another_reads(tmp_path):
    root = tmp_path / "voices"
    reports = _race(root, [("replace", "A", 200), ("replace", "B", 200)], "same")
    assert [r for r in reports if r[0] != "ok"] == []
    assert [p.name for p in root.iterdir()] == ["same"]
    _assert_consistent(root)


def test_two_processes_renaming_and_removing_one_voice_while_another_lists(tmp_path):
    root = tmp_path / "voices"
    reports = _race(root, [("cycle", "x", 60), ("cycle", "x", 60), ("cycle", "y", 30)], "x,x-renamed,y,y-renamed")
    assert [r for r in reports if r[0] != "ok"] == []
    _assert_consistent(root)


def _get_without_waiting_long(root: str, name: str, results) -> None:
    voices_module.LOCK_TIMEOUT_S = 0.5  # this reader gives up instead of waiting for the writer
    try:
        voice = VoiceLibrary(root).get(name)
        results.put(f"read {voice.record.created}")
    except VoiceError as exc:
        results.put(str(exc))


def test_a_reader_never_undoes_a_replacement_under_way(tmp_path):
    """The race of the issue: a reader's crash recovery ran during a writer's swap and moved the old voice back.

    Here a writer holds the lock between the two renames of a replacement; a reader in another process must not
    touch the parked voice: it waits for the lock (and here, told not to wait long, gives up).
    """
    lib = VoiceLibrary(tmp_path / "voices")
    make_voice(lib, "v", seed=1)
    make_voice(VoiceLibrary(tmp_path / "new"), "v", seed=2)
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    with lib._locked():
        (lib.root / "v").rename(lib.root / ".replaced-v")  # the writer, between its renames
        reader = ctx.Process(target=_get_without_waiting_long, args=(str(lib.root), "v", results))
        reader.start()
        outcome = results.get(timeout=120)
        reader.join(timeout=120)
        assert "is busy" in outcome
        assert (lib.root / ".replaced-v").is_dir() and not (lib.root / "v").exists()
        shutil.move(tmp_path / "new" / "v", lib.root / "v")  # the writer finishes its swap
        shutil.rmtree(lib.root / ".replaced-v")
    assert lib.get("v").record.created == "seed 2"
    reader = ctx.Process(target=_get_without_waiting_long, args=(str(lib.root), "v", results))
    reader.start()
    assert results.get(timeout=120) == "read seed 2"
    reader.join(timeout=120)
    assert json.loads((lib.root / "v" / "voice.json").read_text())["created"] == "seed 2"


class _FillsOnSeek(io.BytesIO):
    """A file whose buffered bytes meet a full disk when a seek flushes them (as an encoder's header rewrite does)."""

    def seek(self, offset, whence=0):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_met_on_a_seek_is_kept_not_raised_inside_libsndfile():
    through = speaking._KeptErrors(_FillsOnSeek())
    assert through.write(b"abc") == 3
    assert through.seek(0) == -1 and through.error.errno == errno.ENOSPC  # libsndfile sees a failed seek
    assert through.write(b"more") == 0 and through.seek(0) == -1  # and nothing more is tried


def test_names_that_differ_only_in_letter_case_are_one_name(tmp_path, recordings):
    from voiceclone.cloning.enrollment import enroll as enroll_voice
    from voiceclone.cloning.matcher_conversion import MatcherConversion
    from voiceclone.voices.errors import VoiceExists

    converter = MatcherConversion()
    lib = VoiceLibrary(tmp_path / "lib")
    enroll_voice(lib, [recordings["carol"]], converter, name="carol")
    for force in (False, True):
        with pytest.raises(VoiceExists) as excinfo:
            enroll_voice(lib, [recordings["bob"]], converter, name="CAROL", force=force)
        assert "'carol' already exists (voice names ignore letter case)" in str(excinfo.value)
    enroll_voice(lib, [recordings["bob"]], converter, name="bob")
    with pytest.raises(VoiceExists):
        lib.rename("bob", "Carol")
    lib.rename("bob", "Bob")  # its own name in other letters is fine
    assert sorted(e.name for e in lib.scan()) == ["Bob", "carol"]


def test_a_voice_is_found_in_any_letter_case(lib, tmp_path):
    make_voice(lib, "alice")
    assert lib.get("Alice").name == "alice" and lib.entry("ALICE").name == "alice"
    with tarfile.open(lib.export("ALICE", tmp_path / "a.tar.gz")) as tar:
        assert {m.name.split("/")[0] for m in tar.getmembers()} == {"alice"}  # under its own spelling
    lib.rename("ALICE", "alicia")
    assert lib.names() == ["alicia"]
    lib.remove("Alicia")
    assert lib.names() == []


def test_a_folder_in_the_way_of_a_new_voice_is_named_before_any_work(lib):
    make_voice(lib, "a")
    (lib.root / "emptydir").mkdir()
    (lib.root / "stray.txt").write_text("notes")
    for name in ("emptydir", "stray.txt"):
        with pytest.raises(VoiceError, match="is in the voice library but is not a voice .*move it away"):
            lib.ensure_free(name)
    assert (lib.root / "stray.txt").read_text() == "notes"


def test_a_bare_voice_name_is_the_enrolled_voice_even_beside_a_file_of_that_name(lib, tmp_path, monkeypatch):
    from voiceclone.voices.lookup import find_voice

    make_voice(lib, "bob")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    (elsewhere / "bob").write_bytes(b"RIFF a stray recording")
    (elsewhere / "dave").write_bytes(b"RIFF a recording")
    monkeypatch.chdir(elsewhere)
    assert find_voice(lib, "bob").name == "bob"  # not the stray file: it has none of the voice's consent
    assert find_voice(lib, "Bob").name == "bob"
    assert find_voice(lib, "./bob") == Path("./bob")  # a path still names the file
    assert find_voice(lib, "dave") == Path("dave")  # no voice of that name: the file


def test_a_huge_bad_name_is_not_echoed_whole():
    from voiceclone.voices.names import check_name

    with pytest.raises(VoiceError) as caught:
        check_name("a" * 20000)  # from a page's query string: the answer must not carry it back
    assert len(str(caught.value)) < 300 and "(20000 characters)" in str(caught.value)


def test_a_voice_folder_is_its_owners_alone(lib, tmp_path):
    """A voice is biometric data with its consent record: its folder is readable by its owner only (0700), saved,
    imported or renamed, whatever the umask; the library root is left as the user's umask makes it."""
    old = os.umask(0o022)
    try:
        make_voice(lib, "v")
        other = VoiceLibrary(tmp_path / "other")
        make_voice(other, "w")
        lib.import_archive(other.export("w", tmp_path / "w.tar.gz"))
        lib.rename("v", "u")
    finally:
        os.umask(old)
    for name in ("u", "w"):
        assert (lib.root / name).stat().st_mode & 0o777 == 0o700
