"""Text into units of synthesis: sentences as Pipecat's bots split them, over-long ones cut at clauses, then words.

The CLI and the bot split text the same way: both use Pipecat's `match_endofsentence` (sentencex rules), the
function its TTS services aggregate LLM text with. A base voice synthesises a unit in one piece (Piper's memory
grows with the length of what it is given: 2,500 words in one sentence took 24 GB), so no unit is longer than
`MAX_UNIT_CHARS`: memory stays flat however long the text is.
"""

from __future__ import annotations

import re
import textwrap

from pipecat.utils.string import match_endofsentence

# About 20 s of speech: long enough that a normal sentence is never cut, short enough to keep Piper small.
MAX_UNIT_CHARS = 300
# Sentence ends are looked for in a window of this many characters, so that splitting stays linear in the
# length of a text with no full stop at all.
_WINDOW_CHARS = 4 * MAX_UNIT_CHARS
_CLAUSE_END = re.compile(r"(?<=[,;:\u2013\u2014)])\s+")


def split_sentences(text: str, max_chars: int = MAX_UNIT_CHARS) -> list[str]:
    """The units of `text` to synthesise one at a time, in order, whitespace-normalised.

    Args:
        text: Any text; blank lines always end a sentence.
        max_chars: The longest unit (at least 20 characters); longer sentences are cut at clause
            boundaries (, ; : dashes), then between words.

    Returns:
        Sentences (or parts of over-long ones), each non-empty and at most `max_chars` long unless a single
        word is longer.
    """
    units: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        rest = " ".join(paragraph.split())
        while rest:
            window = rest[:_WINDOW_CHARS]
            end = match_endofsentence(window)
            if end == 0:  # no sentence end in sight: take the window, cut after a clause or between words
                end = len(window) if len(window) == len(rest) else _last_break(window)
            sentence, rest = rest[:end].strip(), rest[end:].strip()
            units.extend(bound(sentence, max_chars))
    return [unit for unit in units if unit]


def _last_break(window: str) -> int:
    """Where to cut a window with no sentence end: after its last clause end, else after its last space."""
    clause_ends = [m.start() for m in _CLAUSE_END.finditer(window)]
    if clause_ends:
        return clause_ends[-1] + 1
    return window.rfind(" ") + 1 or len(window)


def bound(sentence: str, max_chars: int = MAX_UNIT_CHARS) -> list[str]:
    """`sentence` cut into parts of at most `max_chars`: whole clauses packed together, long clauses by words.

    Args:
        sentence: One sentence.
        max_chars: The longest part (at least 20).

    Returns:
        The parts, in order; joined with spaces they give the sentence back.
    """
    if max_chars < 20:
        raise ValueError("max_chars must be at least 20")
    if len(sentence) <= max_chars:
        return [sentence] if sentence else []
    runs = (run for clause in _CLAUSE_END.split(sentence) for run in _by_words(clause, max_chars))
    return _pack(runs, max_chars)


def _by_words(clause: str, max_chars: int) -> list[str]:
    """A clause in runs of whole words of at most `max_chars` (a longer single word is cut hard)."""
    if len(clause) <= max_chars:
        return [clause]
    # Cut first, so that a long word's pieces start at the word (textwrap would fill the run before it with one).
    pieces = (word[i : i + max_chars] for word in clause.split() for i in range(0, len(word), max_chars))
    return textwrap.wrap(" ".join(pieces), max_chars, break_on_hyphens=False)


def _pack(pieces, max_chars: int) -> list[str]:
    """Clauses of at most `max_chars` joined with spaces, greedily, into parts of at most `max_chars`."""
    parts: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + 1 + len(piece) > max_chars:
            parts.append(current)
            current = piece
        else:
            current = f"{current} {piece}" if current else piece
    if current:
        parts.append(current)
    return parts
