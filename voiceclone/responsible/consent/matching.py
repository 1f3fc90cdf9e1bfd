"""Matching what Whisper heard to the consent sentence: the best-matching stretch, and how well the name was heard.

The stretch (`best_span`) is the run of heard words with the lowest word error rate against the sentence; up to
`MAX_LEAD_WORDS` words may come before it and anything after it (a recording goes on with other speech). The name
(`name_similarity`) is compared by its sounds, espeak-ng phonemes through the phonemizer inside piper-tts, so that
"Jon" is heard as "John" and "Aaron" as "Erin" (the same consonants; vowels are what accents and the recogniser
change) but "Gane Lee" never as "Dana Lee"; near misses are scored by Levenshtein distance (rapidfuzz).
`heard_name` gives the words heard where the name belongs, for the message that asks again.
"""

from __future__ import annotations

import re
import threading

from rapidfuzz.distance import Levenshtein

from voiceclone.quality.measures import word_alignment, word_error_rate
from voiceclone.responsible.consent.sentence import words

MAX_LEAD_WORDS = 6  # words heard before the sentence that are ignored ("OK, so, um, ...")

_phonemizer = None
_phonemizer_lock = threading.Lock()


def best_span(target: list[str], heard: list[str]) -> tuple[float, int, int]:
    """The stretch heard[lo:hi] closest to `target`: (its word error rate, lo, hi).

    Up to `MAX_LEAD_WORDS` words may precede it; any number may follow it. Ties go to the earliest, longest
    stretch: "on March 2" heard for "on November 21" is three wrong words, not three missing ones.
    """
    reference = " ".join(target)
    best = (float("inf"), 0, len(heard))
    for lo in range(min(MAX_LEAD_WORDS, len(heard) - 1) + 1):
        for hi in range(len(heard), lo, -1):
            wer = word_error_rate([reference], [" ".join(heard[lo:hi])])
            if wer < best[0] - 1e-9:
                best = (wer, lo, hi)
    return best


def name_similarity(name: str, target: list[str], heard: list[str]) -> float:
    """How well `name` was heard: the best phoneme match between it and one to (its words + 1) heard words.

    Only the heard words that the word alignment puts where the name is in `target` (give or take one word) are
    tried, so that a short name cannot match some other word of the sentence.

    Args:
        name: the name that must be heard.
        target: the normalised words of the expected sentence.
        heard: the normalised words of the matched stretch of the transcript.

    Returns:
        1 - (phoneme edit distance / the longer length), in [0, 1]; 1 when the name's words are all there.
    """
    name_words = words(name)
    if not name_words:
        return 1.0
    region = _name_region(name_words, target, heard)
    if not region:
        return 0.0  # nothing was heard where the name should be
    if any(region[i : i + len(name_words)] == name_words for i in range(len(region))):
        return 1.0
    want = _sounds(" ".join(name_words))
    best = 0.0
    for size in range(1, len(name_words) + 2):
        for i in range(max(1, len(region) - size + 1)):
            best = max(best, _similarity(want, _sounds(" ".join(region[i : i + size]))))
    return best


def heard_name(name: str, target: list[str], heard: list[str]) -> str:
    """The words heard where `name` belongs in the sentence (what a refusal shows); "" when none were."""
    name_words = words(name)
    start = _name_start(name_words, target)
    if start is None:
        return ""
    hyp = _aligned_to(start, start + len(name_words), target, heard)
    return " ".join(heard[min(hyp) : max(hyp) + 1]) if hyp else ""


def _name_start(name_words: list[str], target: list[str]) -> int | None:
    return next((i for i in range(len(target)) if target[i : i + len(name_words)] == name_words), None)


def _aligned_to(start: int, end: int, target: list[str], heard: list[str]) -> list[int]:
    """Indexes of the heard words the word alignment puts at target[start:end]."""
    hyp: list[int] = []
    if not heard:
        return hyp
    for chunk in word_alignment(" ".join(target), " ".join(heard)):
        if chunk.type == "insert":
            if start <= chunk.ref_start_idx <= end:
                hyp += range(chunk.hyp_start_idx, chunk.hyp_end_idx)
        elif chunk.type != "delete":  # equal or substitute: word for word, so the overlap maps across
            lo, hi = max(start, chunk.ref_start_idx), min(end, chunk.ref_end_idx)
            offset = chunk.hyp_start_idx - chunk.ref_start_idx
            hyp += range(lo + offset, hi + offset)
    return hyp


def _name_region(name_words: list[str], target: list[str], heard: list[str]) -> list[str]:
    """The heard words where the name belongs, one more either side; all of `heard` when the sentence has no name."""
    start = _name_start(name_words, target)
    if start is None:
        return heard
    hyp = _aligned_to(start, start + len(name_words), target, heard)
    return heard[max(0, min(hyp) - 1) : max(hyp) + 2] if hyp else []


def _sounds(text: str) -> str:
    """`text` as espeak-ng phonemes without stress, length marks and spaces; the letters if no phonemizer."""
    global _phonemizer
    try:
        with _phonemizer_lock:  # espeak-ng keeps global state: one call at a time
            if _phonemizer is None:
                # Deferred: importing piper takes about 0.07 s, which only a name not heard word for word needs.
                from piper.phonemize_espeak import EspeakPhonemizer

                _phonemizer = EspeakPhonemizer()
            phonemes = _phonemizer.phonemize("en-us", text)
    except Exception:  # piper-tts missing or its espeak-ng data damaged: compare spellings instead
        return re.sub(r"[^a-z0-9]", "", text.lower())
    return "".join(p for sentence in phonemes for p in sentence if p not in "ˈˌː \u0329")


def _similarity(a: str, b: str) -> float:
    """1 when the two sound the same but for their vowels (`_skeleton`), else 1 - Levenshtein distance / the
    longer length (below 1)."""
    if _skeleton(a) == _skeleton(b):
        return 1.0
    return min(Levenshtein.normalized_similarity(a, b), 0.99)


_VOWELS = re.compile(r"[aeiouyæɑɒɔəɚɛɜɝɪʊʌøœɐɘɵɤɯɨʉᵻɞ]+")


def _skeleton(sounds: str) -> str:
    """The consonants in order, each run of vowels as one "V": the vowels are what accents and tiny.en change
    ("Aaron" for "Erin"), the consonants are what makes one name another ("Gane" for "Dana")."""
    return _VOWELS.sub("V", sounds)
