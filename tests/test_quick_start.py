"""An answer's first words go ahead alone, and the base voice's silence is cut where it would only be a wait."""

from __future__ import annotations

import re

import numpy as np
import pytest

from voiceclone.audio.silence import MARGIN_S, trim_silence
from voiceclone.pipecat.quick_start import QuickStartAggregator
from voiceclone.tts.sentences import CLAUSE_PAUSE_S, FIRST_WORDS, WORD_PAUSE_S, early_head, pause_after, quick_start


def tokens(text: str) -> list[str]:
    """Text as an LLM streams it: a word at a time, each with its leading space."""
    return re.findall(r"\s*\S+", text)


async def aggregate(*answers: str) -> list[list[str]]:
    """What the aggregator releases for each answer, one after the other (each ends with a flush)."""
    aggregator = QuickStartAggregator(aggregation_type="sentence")
    released = []
    for answer in answers:
        parts = []
        for token in tokens(answer):
            parts += [a.text async for a in aggregator.aggregate(token)]
        rest = await aggregator.flush()
        released.append(parts + ([rest.text] if rest and rest.text else []))
    return released


async def test_a_first_clause_goes_ahead_then_whole_sentences():
    [parts] = await aggregate("Sure, I can help with that. What do you need, exactly?")
    assert parts == ["Sure,", "I can help with that.", "What do you need, exactly?"]


async def test_with_no_clause_the_first_words_go_ahead():
    [parts] = await aggregate("I think the best book for a long flight is a thriller. Enjoy it!")
    assert FIRST_WORDS == 3 and parts[0] == "I think the best"  # not "I think the": "the" leans on "best"
    assert " ".join(parts) == "I think the best book for a long flight is a thriller. Enjoy it!"
    assert parts[1:] == ["book for a long flight is a thriller.", "Enjoy it!"]


async def test_a_short_sentence_is_not_cut_and_every_answer_starts_early_again():
    first, second = await aggregate("It is Paris. It is big.", "Well, it depends. Fine.")
    assert first == ["It is Paris.", "It is big."]
    assert second == ["Well,", "it depends.", "Fine."]


async def test_an_interruption_starts_a_new_answer():
    aggregator = QuickStartAggregator(aggregation_type="sentence")
    for token in tokens("So, this is"):
        [a async for a in aggregator.aggregate(token)]
    await aggregator.handle_interruption()
    released = []
    for token in tokens("Okay, next one."):
        released += [a.text async for a in aggregator.aggregate(token)]
    assert released == ["Okay,"]


@pytest.mark.parametrize(
    "text, head",
    [
        ("Sure, I", "Sure,"),
        ("The quick brown fox", "The quick brown "),
        ("The quick brown", None),  # the third word may still go on
        ("The capital of France is", "The capital of France "),  # not after "of"
        ("Yes I can do", None),  # "can" leans on the word being written
        ("Yes I can do that for", "Yes I can do that "),  # five words go whatever the last
        ("Could you tell me why", "Could you tell me "),  # not between "tell" and "me"
        ("Dr. Smith is here to see", "Dr. Smith is here "),
        ("Well I'm not sure", None),
        ("Well I'm not sure what", "Well I'm not sure "),
    ],
)
def test_early_head(text, head):
    assert early_head(text) == head


@pytest.mark.parametrize(
    "units, split",
    [
        (["Sure, I can help you with that today."], ["Sure,", "I can help you with that today."]),
        (["Could you tell me what the weather will be like?"], ["Could you tell me", "what the weather will be like?"]),
        (["The quick brown fox jumps over the lazy dog."], ["The quick brown", "fox jumps over the lazy dog."]),
        (["Hello there, this is a test."], ["Hello there, this is a test."]),  # the rest is too short to wait for
        (["Hi!", "More."], ["Hi!", "More."]),
        ([], []),
    ],
)
def test_quick_start_splits_a_whole_first_sentence(units, split):
    assert quick_start(units) == split


@pytest.mark.parametrize(
    "unit, pause",
    [
        ("Hello.", None),
        ("Really?!", None),
        ('He said "yes."', None),
        ("Sure,", CLAUSE_PAUSE_S),
        ("You said:", CLAUSE_PAUSE_S),
        ("Dr. Smith is here to", WORD_PAUSE_S),
        ("(see above)", WORD_PAUSE_S),
        ("", None),
    ],
)
def test_pause_after(unit, pause):
    assert pause_after(unit) == pause


def test_trim_silence_keeps_a_margin_around_the_sound():
    rate = 1000
    audio = np.concatenate([np.zeros(50), np.full(100, 0.5), np.zeros(200)]).astype(np.float32)
    margin = int(MARGIN_S * rate)
    assert len(trim_silence(audio, rate)) == len(audio) - 50 + margin
    both = trim_silence(audio, rate, start=True, end=True, end_keep_s=0.02)
    assert len(both) == margin + 100 + 20 and both[margin] == 0.5
    assert len(trim_silence(audio, rate, start=False, end=True, end_keep_s=0.0)) == 150
    silent = np.zeros(100, np.float32)
    assert trim_silence(silent, rate, end=True) is silent
