"""Clone quality on voices the matcher was not tuned on: speaker similarity, identification, word error rate.

    python benchmarks/quality.py                    # the held-out voices (about 3-4 min on 2 cores)
    python benchmarks/quality.py --part tune --no-wer   # the voices tuned on, similarity only (quicker)

The voices are `testkit/voices_dev.py`'s development set (espeak-ng accents and variants, the Piper voice edited
by sox and by WORLD; none is the demo voice). For each voice of the part: its enrollment passage makes the
matcher's profile and the speaker embedding it is judged against; the base voice (Piper, its noise off) speaks the
voice's own test sentences; the clones convert exactly that audio. Printed per voice:

- similarity (resemblyzer cosine, per sentence, averaged; as `voiceclone eval`) to the target's enrollment of: the
  base voice, the matcher's clone, the plain WORLD recipe of issue 20 (`testkit/world_recipe.py`, a reference), and
  the ceiling: the target itself speaking the test sentences;
- the clone's nearest voice among all the voices of the set (tune and held-out: closed-set identification);
- word error rates (Whisper tiny.en, as `voiceclone eval`) of base, matcher and recipe over the voice's sentences.

Then the means, the matcher's mean gain over the base voice, top-1 identification accuracy and the overall word
error rates. OpenVoice gets a column only when its checkpoint is installed: with random weights it would mean
nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit import world_recipe  # noqa: E402
from testkit.process import machine  # noqa: E402
from testkit.voices_dev import RATE, voices  # noqa: E402
from voiceclone.cloning.calibration import calibration_speech  # noqa: E402
from voiceclone.cloning.cloned import ClonedVoice  # noqa: E402
from voiceclone.cloning.matcher_conversion import MatcherConversion  # noqa: E402
from voiceclone.quality.measures import cosine, embed, encoder_input, load_models, word_error_rate  # noqa: E402
from voiceclone.quality.transcribe import transcribe  # noqa: E402
from voiceclone.tts import PiperEngine, PiperSettings  # noqa: E402


def utterance_embedding(audio: np.ndarray, rate: int) -> np.ndarray | None:
    speech = encoder_input(audio, rate)
    return embed(speech) if len(speech) >= 0.5 * 16000 else None


def openvoice_conversion():
    """The installed OpenVoice converter, or None (then there is no column: random weights mean nothing)."""
    from voiceclone.cloning.checkpoints import ModelStore
    from voiceclone.cloning.openvoice_conversion import load_openvoice

    folder = ModelStore.from_settings().locate("v2")
    return load_openvoice(folder, "cpu") if folder is not None else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["held-out", "tune", "all"], default="held-out")
    parser.add_argument("--no-wer", action="store_true", help="skip Whisper (similarity and identification only)")
    parser.add_argument("--voices", help="comma-separated voice names (default: every voice of the part)")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"machine: {machine()}")
    load_models()

    engine = PiperEngine(PiperSettings(noise_scale=0.0, noise_w_scale=0.0))
    matcher = MatcherConversion(RATE)
    calibration = calibration_speech(engine, RATE)
    base_profile = matcher.analyse(calibration, RATE)  # what `base_data` caches, made fresh here
    base_recipe = world_recipe.stats(calibration, RATE)
    systems: dict[str, object] = {"matcher": ClonedVoice(engine, matcher, None, source_se=base_profile)}
    openvoice = openvoice_conversion()
    if openvoice is not None:
        systems["openvoice"] = ClonedVoice(engine, openvoice, None, seed=0)
    else:
        print("OpenVoice: no checkpoint installed, no column (its random weights would mean nothing)")

    every = voices()
    measured = [v for v in every if args.part == "all" or v.part == args.part]
    if args.voices:
        names = set(args.voices.split(","))
        measured = [v for v in every if v.name in names]
    print(f"voices: {len(measured)} measured ({args.part}), {len(every)} candidates for identification")

    enrollments = {v.name: v.enrollment() for v in every}
    candidates = {name: embed(encoder_input(audio, RATE)) for name, audio in enrollments.items()}
    columns = ["base", *systems, "recipe"]
    base_cache: dict[str, np.ndarray] = {}
    convert_s = converted_s = 0.0
    rows = []
    for voice in measured:
        target = candidates[voice.name]
        profile = matcher.analyse(enrollments[voice.name], RATE)
        recipe_target = world_recipe.stats(enrollments[voice.name], RATE)
        sims = {c: [] for c in [*columns, "ceiling"]}
        near = {c: np.zeros(len(candidates)) for c in columns}
        heard = {c: [] for c in columns}
        for sentence in voice.test_sentences:
            if sentence not in base_cache:
                base_cache[sentence] = engine.synthesize(sentence)
            base = base_cache[sentence]
            audio = {"base": base}
            for name, cloned in systems.items():
                t0 = time.perf_counter()
                data = profile if name == "matcher" else cloned.converter.analyse(enrollments[voice.name], RATE)
                out = np.concatenate(list(cloned.with_target(data).convert(base, engine.sample_rate)))
                if name == "matcher":
                    convert_s += time.perf_counter() - t0
                    converted_s += len(base) / engine.sample_rate
                audio[name] = out
            audio["recipe"] = world_recipe.convert(base, RATE, base_recipe, recipe_target)
            own = voice.say(sentence)
            sims["ceiling"].append(cosine(utterance_embedding(own, RATE), target))
            for column in columns:
                emb = utterance_embedding(audio[column], RATE)
                scores = np.array([cosine(emb, c) if emb is not None else 0.0 for c in candidates.values()])
                near[column] += scores / len(voice.test_sentences)
                sims[column].append(scores[list(candidates).index(voice.name)])
                if not args.no_wer:
                    heard[column].append(transcribe(audio[column], RATE))
        row = {"voice": voice, **{c: float(np.mean(v)) for c, v in sims.items()}}
        for column in columns:
            order = np.argsort(near[column])[::-1]
            row[f"near-{column}"] = [(list(candidates)[i], float(near[column][i])) for i in order[:2]]
            if not args.no_wer:
                row[f"wer-{column}"] = word_error_rate(voice.test_sentences, heard[column])
                row[f"words-{column}"] = heard[column]
        rows.append(row)
        print_row(row, columns, args.no_wer)
    summary(rows, columns, args.no_wer)
    if converted_s:
        print(f"matcher conversion here: real-time factor {convert_s / converted_s:.3f} (under this run's load)")
    print(f"took {time.perf_counter() - started:.0f} s")


def print_row(row: dict, columns: list[str], no_wer: bool) -> None:
    voice = row["voice"]
    if not hasattr(print_row, "header"):
        print_row.header = True
        sims = " ".join(f"{c:>8}" for c in [*columns, "ceiling"])
        wers = "" if no_wer else "  WER " + "/".join(columns)
        print(f"\n{'voice':16} {'kind':11} {sims}  {'gain':>6}  nearest (matcher){wers}")
    sims = " ".join(f"{row[c]:8.3f}" for c in [*columns, "ceiling"])
    gain = row[columns[1]] - row["base"]
    first = row[f"near-{columns[1]}"][0]
    mark = "" if first[0] == voice.name else " (wrong)"
    nearest = f"{first[0]} {first[1]:.2f}{mark}"
    wers = "" if no_wer else "  " + " / ".join(f"{row[f'wer-{c}']:.0%}" for c in columns)
    print(f"{voice.name:16} {voice.kind:11} {sims}  {gain:+6.3f}  {nearest:28}{wers}")


def summary(rows: list[dict], columns: list[str], no_wer: bool) -> None:
    if not rows:
        return
    print()
    means = "  ".join(f"{c} {np.mean([r[c] for r in rows]):.3f}" for c in [*columns, "ceiling"])
    print(f"mean similarity: {means}")
    for column in columns[1:]:
        gains = np.array([r[column] - r["base"] for r in rows])
        print(f"{column:>9} gain over base: mean {gains.mean():+.3f}, min {gains.min():+.3f}, max {gains.max():+.3f}")
    top1 = "  ".join(f"{c} {np.mean([r[f'near-{c}'][0][0] == r['voice'].name for r in rows]):.0%}" for c in columns)
    print(f"nearest voice is the target (top-1 of {len(rows)}): {top1}")
    if not no_wer:
        said = [s for r in rows for s in r["voice"].test_sentences]
        wer = "  ".join(f"{c} {word_error_rate(said, [h for r in rows for h in r[f'words-{c}']]):.1%}" for c in columns)
        print(f"word error rate over all sentences: {wer}")


if __name__ == "__main__":
    main()
