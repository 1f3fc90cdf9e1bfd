"""Shared fixtures: tiny random converters in the published format, their reference twins, real speech."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

# Two pytest workers share this machine's cores (`make test` runs `-n 2`): one math thread each, inherited by the
# CLI and bot processes the tests start, instead of every process spinning a thread per core against the others.
for _threads in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))

from checkpoints import random_reference, save_converter, tiny_config  # noqa: E402


@pytest.fixture(scope="session")
def tiny_v2(tmp_path_factory):
    """(folder, reference model) of a tiny random V2 converter."""
    cfg = tiny_config("v2")
    ref = random_reference(cfg, seed=1)
    return save_converter(tmp_path_factory.mktemp("tiny_v2"), cfg, ref), ref


@pytest.fixture(scope="session")
def tiny_v1(tmp_path_factory):
    """(folder, reference model) of a tiny random V1 converter (no `_version_`, no `zero_g`)."""
    cfg = tiny_config("v1")
    ref = random_reference(cfg, seed=2)
    return save_converter(tmp_path_factory.mktemp("tiny_v1"), cfg, ref), ref


@pytest.fixture(scope="session")
def speech() -> np.ndarray:
    """About 3 s of real speech at 22050 Hz from the bundled Piper voice."""
    from testkit.speech import speech_sample

    return speech_sample(3.0, 22050)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory, tiny_v2):
    """A converter store holding the tiny V2 converter as if downloaded."""
    import shutil

    root = tmp_path_factory.mktemp("models")
    shutil.copytree(tiny_v2[0], root / "openvoice-v2")
    return root


@pytest.fixture(scope="session")
def recordings(tmp_path_factory, speech):
    """Recordings a user might bring, in every supported format, and broken ones."""
    import soundfile as sf

    from testkit.speech import speech_sample

    root = tmp_path_factory.mktemp("recordings")
    long = speech_sample(8.0, 22050)
    stereo_44k = np.stack([long, long * 0.7], axis=1)
    import soxr

    files = {}
    sf.write(root / "alice.wav", soxr.resample(stereo_44k, 22050, 44100), 44100)
    sf.write(root / "bob.flac", long, 22050)
    sf.write(root / "carol.ogg", soxr.resample(long, 22050, 16000), 16000)
    sf.write(root / "dave.mp3", long, 22050)
    sf.write(root / "short.wav", long[: int(22050 * 2.0)], 22050)
    sf.write(root / "silence.wav", np.zeros(22050 * 5, dtype=np.float32), 22050)
    sf.write(root / "hum.wav", (0.3 * np.sin(np.arange(22050 * 5) * 2 * np.pi * 50 / 22050)).astype(np.float32), 22050)
    nan = long.copy()
    nan[1000:1010] = np.nan
    sf.write(root / "nan.wav", nan, 22050, subtype="FLOAT")
    (root / "empty.wav").write_bytes(b"")
    (root / "notes.wav").write_text("this is a text file, not audio\n" * 100)
    whole = (root / "bob.flac").read_bytes()
    (root / "cut_flac.flac").write_bytes(whole[: len(whole) // 2])
    wav = (root / "alice.wav").read_bytes()
    (root / "cut_wav.wav").write_bytes(wav[: len(wav) // 3])
    (root / "folder.wav").mkdir()
    for path in root.iterdir():
        files[path.stem] = path
    return files


@pytest.fixture(scope="session")
def bot_parts(tmp_path_factory, tiny_v2, recordings):
    """(OpenVoice conversion, library with voices bob and carol, deterministic Piper engine), one base-voice cache."""
    import os

    from voiceclone.cloning.enrollment import enroll
    from voiceclone.cloning.openvoice_conversion import OpenVoiceConversion
    from voiceclone.openvoice.converter import ToneColorConverter
    from voiceclone.tts import PiperEngine, PiperSettings
    from voiceclone.voices.store import VoiceLibrary

    os.environ["VOICECLONE_CACHE_DIR"] = str(tmp_path_factory.mktemp("bot-cache"))
    converter = OpenVoiceConversion(ToneColorConverter.load(tiny_v2[0], device="cpu"))
    library = VoiceLibrary(tmp_path_factory.mktemp("bot-voices"))
    enroll(library, [recordings["bob"]], converter, name="bob")
    enroll(library, [recordings["carol"]], converter, name="carol")
    yield converter, library, PiperEngine(PiperSettings(noise_scale=0.0, noise_w_scale=0.0))
    os.environ.pop("VOICECLONE_CACHE_DIR", None)


def _quiet_pipecat() -> None:
    """Pipecat logs every frame at DEBUG through loguru; tests want its warnings only."""
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")


_quiet_pipecat()
