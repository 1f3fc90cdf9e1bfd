"""Audio input (issue 9): MP3s as encoders make them, cut MP3s, long recordings in bounded memory, the speech
kept, and a background of digital silence."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cli_helpers import ROOT, run_cli

from voiceclone.audio.mp3 import mpeg_frame
from voiceclone.audio.quality import QualityMeter, SpeechSelection, measure, speech_score
from voiceclone.audio.reader import AudioError, load_audio
from voiceclone.audio.speech import masked_blocks, speech_mask
from voiceclone.cloning.enrollment import prepare
from voiceclone.cloning.openvoice_conversion import PIECE_S
from voiceclone.voices.names import MAX_SPEECH_S

SOX_RATES = [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000]


def _sox_has_mp3() -> bool:
    if shutil.which("sox") is None:
        return False
    shown = subprocess.run(["sox", "-h"], capture_output=True, text=True)
    return " mp3" in shown.stdout


needs_sox = pytest.mark.skipif(not _sox_has_mp3(), reason="sox with MP3 support is not installed (libsox-fmt-mp3)")


@pytest.fixture(scope="module")
def take(recordings, tmp_path_factory) -> Path:
    """8 s of speech as a WAV, what a user records before converting."""
    path = tmp_path_factory.mktemp("take") / "take.wav"
    audio, sr = sf.read(recordings["bob"], dtype="float32")
    sf.write(path, audio, sr)
    return path


@pytest.fixture(scope="module")
def sox_mp3s(take) -> dict[str, Path]:
    """MP3s made by sox as in the issue (`sox take.wav -r RATE take.mp3`), mono and stereo, CBR and VBR."""
    if not _sox_has_mp3():
        pytest.skip("sox with MP3 support is not installed (libsox-fmt-mp3)")
    out = {}
    for rate in SOX_RATES:
        for channels in (1, 2):
            path = take.parent / f"sox-{rate}-{channels}ch.mp3"
            subprocess.run(
                ["sox", str(take), "-c", str(channels), "-r", str(rate), str(path)], check=True, capture_output=True
            )
            out[path.stem] = path
    for name, args in (("sox-cbr320", ["-C", "320"]), ("sox-vbr", ["-C", "-4.2"])):
        path = take.parent / f"{name}.mp3"
        subprocess.run(["sox", str(take), *args, "-r", "44100", str(path)], check=True, capture_output=True)
        out[name] = path
    return out


@pytest.fixture(scope="module")
def soundfile_mp3(take) -> Path:
    """An MP3 written by libsndfile (LAME, with an Info header)."""
    audio, sr = sf.read(take, dtype="float32")
    path = take.parent / "soundfile.mp3"
    sf.write(path, audio, sr)
    return path


def _frame_ends(data: bytes) -> set[int]:
    """Byte offsets where an MP3's frames end (the file starts with its first frame)."""
    ends, pos = set(), 0
    while (frame := mpeg_frame(data[pos : pos + 4])) is not None and pos + frame.length <= len(data):
        pos += frame.length
        ends.add(pos)
    return ends


def _has_info_header(data: bytes) -> bool:
    return any(tag in data[:200] for tag in (b"Xing", b"Info", b"VBRI"))


# ------------------------------------------------------------------------------------------------ MP3s
@needs_sox
def test_mp3s_made_by_sox_load_whole(sox_mp3s):
    for name, path in sox_mp3s.items():
        audio, sr = load_audio(path)
        assert 7.95 < len(audio) / sr < 8.35, name  # MP3 adds the encoder's delay and a last frame's padding


def test_mp3_made_by_soundfile_loads_whole(soundfile_mp3):
    audio, sr = load_audio(soundfile_mp3)
    assert len(audio) / sr == pytest.approx(8.0, abs=0.05)


@needs_sox
@pytest.mark.parametrize("fraction", [1 / 2, 2 / 3])
def test_mp3s_cut_inside_a_frame_are_truncated(sox_mp3s, soundfile_mp3, tmp_path, fraction):
    for path in [*sox_mp3s.values(), soundfile_mp3]:
        data = path.read_bytes()
        cut = int(len(data) * fraction)
        if cut in _frame_ends(data):
            cut += 7  # a cut exactly between frames is covered by the next test
        (tmp_path / "cut.mp3").write_bytes(data[:cut])
        with pytest.raises(AudioError, match="truncated"):
            load_audio(tmp_path / "cut.mp3")


@needs_sox
@pytest.mark.parametrize("missing", [1, 3, 40, 150])
def test_mp3s_missing_their_last_bytes_are_truncated(sox_mp3s, soundfile_mp3, tmp_path, missing):
    for path in [*sox_mp3s.values(), soundfile_mp3]:
        (tmp_path / "cut.mp3").write_bytes(path.read_bytes()[:-missing])
        with pytest.raises(AudioError, match="truncated"):
            load_audio(tmp_path / "cut.mp3")


@needs_sox
def test_mp3s_cut_between_frames(sox_mp3s, soundfile_mp3, tmp_path):
    """Between two frames, an MP3 with an info header (frame count) is caught; one without is a shorter MP3.

    Nothing in a constant-bitrate MP3 without an info header says how long it was meant to be: cut between two
    frames, it is a valid MP3 of fewer frames, and it loads as that.
    """
    with_info = soundfile_mp3.read_bytes()
    assert _has_info_header(with_info)
    half = min(_frame_ends(with_info), key=lambda end: abs(end - len(with_info) // 2))
    (tmp_path / "cut.mp3").write_bytes(with_info[:half])
    with pytest.raises(AudioError, match="truncated"):
        load_audio(tmp_path / "cut.mp3")
    plain = sox_mp3s["sox-44100-1ch"].read_bytes()
    assert not _has_info_header(plain)
    half = min(_frame_ends(plain), key=lambda end: abs(end - len(plain) // 2))
    (tmp_path / "cut.mp3").write_bytes(plain[:half])
    audio, sr = load_audio(tmp_path / "cut.mp3")
    assert 3.0 < len(audio) / sr < 5.0


@needs_sox
def test_mp3_tags_are_not_audio(sox_mp3s, tmp_path):
    """ID3v2 in front and ID3v1 at the end are skipped; a cut ID3v1 tag still means a cut file."""
    id3v2 = b"ID3\x04\x00\x00\x00\x00\x00\x0a" + bytes(10)  # an empty ID3v2.4 tag of 10 bytes
    id3v1 = b"TAG" + b"title".ljust(30, b"\0") + bytes(95)
    tagged = tmp_path / "tagged.mp3"
    tagged.write_bytes(id3v2 + sox_mp3s["sox-22050-1ch"].read_bytes() + id3v1)
    audio, sr = load_audio(tagged)
    assert 7.95 < len(audio) / sr < 8.35
    (tmp_path / "cut.mp3").write_bytes(tagged.read_bytes()[:-5])
    with pytest.raises(AudioError, match="truncated"):
        load_audio(tmp_path / "cut.mp3")


@needs_sox
def test_a_vbr_mp3_without_info_header_is_refused_not_shortened(sox_mp3s, tmp_path):
    """libsndfile stops at its estimate, which for such a file is far too short: say so rather than lose audio."""
    data = sox_mp3s["sox-vbr"].read_bytes()
    first = mpeg_frame(data[:4])
    assert first is not None and _has_info_header(data)
    (tmp_path / "noinfo.mp3").write_bytes(data[first.length :])  # drop the Xing frame
    with pytest.raises(AudioError, match="convert it to WAV or FLAC"):
        load_audio(tmp_path / "noinfo.mp3")


@needs_sox
def test_enroll_a_sox_mp3_from_the_command_line(tmp_path, models_dir, sox_mp3s):
    lib = tmp_path / "voices"
    result = run_cli(
        "enroll",
        str(sox_mp3s["sox-44100-1ch"]),
        "--name",
        "bob",
        "--voices-dir",
        str(lib),
        env={"VOICECLONE_MODELS_DIR": models_dir},
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((lib / "bob" / "voice.json").read_text())["speech_seconds"] > 5.0


def test_a_cut_wav_is_still_truncated(recordings):
    with pytest.raises(AudioError, match="truncated"):
        load_audio(recordings["cut_wav"])


# ------------------------------------------------------------------------------------------ long recordings
def test_blockwise_speech_mask_matches_one_pass(recordings):
    """The VAD run in pieces with context on both sides marks (almost) the same samples as one whole pass."""
    speech, sr = sf.read(recordings["bob"], dtype="float32")
    gap = np.zeros(sr, dtype=np.float32)
    audio = np.concatenate([np.concatenate([speech, gap])] * 8)  # 72 s: several pieces of 20 s
    whole = speech_mask(audio, sr)
    blocks = (audio[i : i + 7 * sr] for i in range(0, len(audio), 7 * sr))
    parts = list(masked_blocks(blocks, sr, speech_mask, core_s=20.0, context_s=2.0))
    assert len(parts) >= 3
    assert np.array_equal(np.concatenate([a for a, _ in parts]), audio)
    pieced = np.concatenate([m for _, m in parts])
    assert len(pieced) == len(whole) and np.mean(pieced == whole) > 0.995


def test_quality_measured_blockwise_equals_measured_whole(recordings):
    speech, sr = sf.read(recordings["bob"], dtype="float32")
    audio = np.concatenate([speech, 0.01 * np.random.default_rng(0).standard_normal(sr * 3).astype(np.float32)])
    mask = speech_mask(audio, sr)
    meter = QualityMeter(sr)
    for i in range(0, len(audio), 12345):
        meter.add(audio[i : i + 12345], mask[i : i + 12345])
    pieced, whole = meter.quality(), measure(audio, sr, mask)
    for field in ("duration_s", "speech_s", "clipped_fraction", "speech_level_dbfs", "noise_level_dbfs", "snr_db"):
        assert getattr(pieced, field) == pytest.approx(getattr(whole, field), abs=1e-6), field


def test_speech_selection_keeps_everything_below_the_limit_in_order():
    rng = np.random.default_rng(1)
    speech = rng.standard_normal(22050 * 25).astype(np.float32) * 0.1
    kept = SpeechSelection(22050, limit_s=60.0, piece_s=10.0)
    for i in range(0, len(speech), 7000):
        kept.add(speech[i : i + 7000])
    assert np.array_equal(kept.speech(), speech)


def test_speech_selection_keeps_the_cleanest_pieces_in_order(recordings):
    speech, sr = sf.read(recordings["bob"], dtype="float32")
    rng = np.random.default_rng(2)
    clean = np.tile(speech, 2)[: sr * 10]
    noisy = clean + 0.05 * rng.standard_normal(len(clean)).astype(np.float32)
    clipped = np.clip(clean * 20, -1, 1)
    pieces = [noisy, clean * 0.5, clipped, clean, noisy * 0.9, clean * 0.8]
    assert speech_score(clean, sr) > speech_score(noisy, sr) > speech_score(clipped, sr)
    kept = SpeechSelection(sr, limit_s=30.0, piece_s=10.0)
    for piece in pieces:
        kept.add(piece)
    assert np.array_equal(kept.speech(), np.concatenate([clean * 0.5, clean, clean * 0.8]))


_PREPARE = """
import json, resource, sys
from voiceclone.cloning.enrollment import prepare
sample = prepare([sys.argv[1]], 22050)
print(json.dumps({"peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "kept_s": len(sample.speech) / 22050, "speech_s": sample.quality.speech_s,
                  "duration_s": sample.quality.duration_s}))
"""


def _prepare_in_subprocess(path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECLONE_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", _PREPARE, str(path)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _long_recording(path: Path, minutes: float) -> Path:
    """Piper speech with pauses, tiled to `minutes`, as a 44.1 kHz WAV written block by block."""
    from testkit.speech import speech_sample

    unit = np.concatenate([speech_sample(29.0, 44100), np.zeros(44100, dtype=np.float32)])
    with sf.SoundFile(path, "w", samplerate=44100, channels=1, subtype="PCM_16") as out:
        for _ in range(round(minutes * 2)):
            out.write(unit)
    return path


def test_a_long_recording_is_prepared_in_bounded_memory_and_capped(tmp_path):
    """20 minutes of speech: memory stays near that of 1 minute, and only MAX_SPEECH_S of speech is kept.

    Reading the whole file, as before, would take 20 min x 44100 x 4 bytes = 212 MB for the samples alone, and
    several times that for the resampled copy, the VAD's copy and the masks.
    """
    short = _prepare_in_subprocess(_long_recording(tmp_path / "short.wav", 1.0))
    long = _prepare_in_subprocess(_long_recording(tmp_path / "long.wav", 20.0))
    assert long["duration_s"] == pytest.approx(1200.0, abs=1.0) and long["speech_s"] > 900
    assert long["kept_s"] <= MAX_SPEECH_S and long["kept_s"] > MAX_SPEECH_S - PIECE_S
    assert short["kept_s"] == pytest.approx(short["speech_s"], abs=1e-3)
    grew_mb = (long["peak_kib"] - short["peak_kib"]) / 1024
    assert grew_mb < 60, f"peak memory grew by {grew_mb:.0f} MB from 1 to 20 minutes"


def test_sources_record_the_whole_files_hash(recordings):
    sample = prepare([recordings["bob"]], 22050)
    assert sample.sources[0].sha256 == hashlib.sha256(recordings["bob"].read_bytes()).hexdigest()
    assert sample.sources[0].duration_s == pytest.approx(8.0, abs=0.01)


# ------------------------------------------------------------------------------------------- digital silence
def test_digital_silence_is_no_background_not_minus_200_dbfs(recordings, tmp_path):
    """A noise gate (or an editor) leaves exact zeros between the words: there is no background to measure."""
    speech, sr = sf.read(recordings["bob"], dtype="float32")
    gated = np.where(np.abs(speech) < 1e-3, 0.0, speech).astype(np.float32)
    path = tmp_path / "gated.wav"
    sf.write(path, np.concatenate([np.zeros(sr * 2, np.float32), gated, np.zeros(sr * 2, np.float32)]), sr)
    quality = prepare([path], 22050).quality
    assert quality.digital_silence and quality.noise_floor_dbfs is None
    assert quality.background() == "silent (digital silence)"
    assert not any(w.startswith("noisy") for w in quality.warnings())
    saved = quality.as_dict()
    assert saved["noise_level_dbfs"] is None and saved["snr_db"] is None and saved["digital_silence"] is True
    json.dumps(saved, allow_nan=False)
    assert isinstance(quality.noise_level_dbfs, float) and isinstance(quality.snr_db, float)  # old callers


def test_a_real_background_is_measured(recordings, tmp_path):
    speech, sr = sf.read(recordings["bob"], dtype="float32")
    rng = np.random.default_rng(3)
    path = tmp_path / "room.wav"
    sf.write(path, speech + 0.003 * rng.standard_normal(len(speech)).astype(np.float32), sr)
    quality = prepare([path], 22050).quality
    assert not quality.digital_silence and quality.noise_floor_dbfs == quality.noise_level_dbfs
    assert -60 < quality.noise_level_dbfs < -40 and "dB below speech" in quality.background()
    assert isinstance(quality.as_dict()["noise_level_dbfs"], float)
