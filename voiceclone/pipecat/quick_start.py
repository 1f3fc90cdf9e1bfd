"""An answer's first words go ahead alone, so that its voice starts before its first sentence is written.

Base synthesis and the first converted chunk cost in proportion to the text, and the LLM writes the first
sentence token by token: waiting for the whole of it (Pipecat's sentence aggregation) puts both in the turn's
latency. So the first aggregation of each answer is cut early (`voiceclone.tts.sentences.early_head`: at its
first clause, or after its first few words), and the rest of the answer goes sentence by sentence as before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from pipecat.utils.text.base_text_aggregator import Aggregation, TextType
from pipecat.utils.text.simple_text_aggregator import SimpleTextAggregator

from voiceclone.tts.sentences import FIRST_WORDS, early_head


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
