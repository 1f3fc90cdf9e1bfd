"""An answer's first words go ahead alone, so that its voice starts before its first sentence is written.

Base synthesis and the first converted chunk cost in proportion to the text, and the LLM writes the first
sentence token by token: waiting for the whole of it (Pipecat's sentence aggregation) puts both in the turn's
latency. So the first aggregation of each answer is cut early, at its first clause (", ; :") or after its first
few words, and the rest of the answer goes sentence by sentence as before.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from pipecat.utils.text.base_text_aggregator import Aggregation, TextType
from pipecat.utils.text.simple_text_aggregator import SimpleTextAggregator

# The first clause is sent alone when it is this long (characters) and the rest of its unit long enough to be
# worth waiting for ("Sure," "You said:" "Well, ..." go ahead).
QUICK_START_CHARS = (4, 60)
QUICK_START_REST = 20
# With no clause in sight, the first this many words go ahead (at a word's end): the LLM writes them in a few
# tens of milliseconds and the base voice says them in about a second, long enough to make the rest behind them.
FIRST_WORDS = 5
# After a unit that stops mid-sentence, the base voice's closing silence (170-270 ms) is cut to this much: a
# clause's short pause, or next to none between two parts of a phrase.
CLAUSE_PAUSE_S = 0.08
WORD_PAUSE_S = 0.02
SENTENCE_ENDS = ".!?…。！？"
_CLOSING = re.compile(r"[\"')\]»”’]+$")
_CLAUSE = re.compile(r"[,;:](?=\s)")
_WORD_END = re.compile(r"\S+\s+")


def quick_start(units: list[str]) -> list[str]:
    """The units of an answer's first sentence, its first clause split off when short ("You said:", "Sure,").

    For a sentence that arrives whole (a TTSSpeakFrame, a cached answer); the LLM's text is cut as it streams by
    `QuickStartAggregator`.

    Args:
        units: The sentence's units of synthesis (`voiceclone.tts.sentences.bound`).

    Returns:
        The same text, maybe in one more unit.
    """
    if not units:
        return units
    match = _CLAUSE.search(units[0])
    if match is None:
        return units
    head, rest = units[0][: match.end()].strip(), units[0][match.end() :].strip()
    shortest, longest = QUICK_START_CHARS
    if shortest <= len(head) <= longest and len(rest) >= QUICK_START_REST:
        return [head, rest, *units[1:]]
    return units


def pause_after(unit: str) -> float | None:
    """The silence to leave after a unit that does not end a sentence (seconds), or None after one that does."""
    end = _CLOSING.sub("", unit.rstrip())[-1:]
    if not end or end in SENTENCE_ENDS:
        return None
    return CLAUSE_PAUSE_S if end in ",;:-–—" else WORD_PAUSE_S


def early_head(text: str, first_words: int = FIRST_WORDS) -> str | None:
    """The start of `text` to speak ahead of its sentence: up to its first clause mark, else its first words.

    Only whole words followed by a space count (a word still being written may go on). None while there is not
    enough yet.
    """
    clause = _CLAUSE.search(text)
    if clause is not None and QUICK_START_CHARS[0] <= len(text[: clause.end()].strip()) <= QUICK_START_CHARS[1]:
        return text[: clause.end()]
    words = list(_WORD_END.finditer(text))
    if len(words) >= first_words:
        return text[: words[first_words - 1].end()]
    return None


class QuickStartAggregator(SimpleTextAggregator):
    """Pipecat's sentence aggregation, except that each answer's first words are released early (`early_head`).

    An answer ends with `flush` (Pipecat calls it at the LLM's end of response) or an interruption; the next
    text starts a new one.
    """

    def __init__(self, first_words: int = FIRST_WORDS, **kwargs):
        super().__init__(**kwargs)
        self._first_words = first_words
        self._started = False  # whether this answer has released anything yet

    async def aggregate(self, text: str) -> AsyncIterator[Aggregation]:
        async for aggregation in super().aggregate(text):
            self._started = True
            yield aggregation
        if self._started or self._aggregation_type != TextType.SENTENCE or not self._lookahead_idle():
            return
        head = early_head(self._text.lstrip(), self._first_words)
        if head is not None:
            self._started = True
            cut = len(self._text) - len(self._text.lstrip()) + len(head)
            self._text = self._text[cut:]
            yield Aggregation(text=head.strip(), type=TextType.SENTENCE)

    def _lookahead_idle(self) -> bool:
        """No sentence end is pending a check (a period waiting for the next word decides that text itself)."""
        return self._lookahead_state.name == "IDLE"

    async def flush(self) -> Aggregation | None:
        self._started = False
        return await super().flush()

    async def handle_interruption(self):
        self._started = False
        await super().handle_interruption()

    async def reset(self):
        self._started = False
        await super().reset()
