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

from voiceclone.tts.text import speakable

# About 20 s of speech: long enough that a normal sentence is never cut, short enough to keep Piper small.
MAX_UNIT_CHARS = 300
# Sentence ends are looked for in a window of this many characters, so that splitting stays linear in the
# length of a text with no full stop at all.
_WINDOW_CHARS = 4 * MAX_UNIT_CHARS
_CLAUSE_END = re.compile(r"(?<=[,;:\u2013\u2014)])\s+")

# The first clause is sent alone when it is this long (characters) and the rest of its unit long enough to be
# worth waiting for ("Sure," "You said:" "Well, ..." go ahead).
QUICK_START_CHARS = (4, 60)
QUICK_START_REST = 20
# With no clause in sight, the first this many words go ahead (at a word's end): the LLM writes them in a few
# tens of milliseconds, the base voice makes them in about 50 ms (5 words: about 80) and says them in about a
# second, long enough to make the rest behind them.
FIRST_WORDS = 3
# ... unless the last of them leans on the next ("I think the | best"): then the head takes words up to this many
# until one does not, so that the seam falls where a speaker could pause.
FIRST_WORDS_MAX = 5
# Words that belong with the word after them (articles, prepositions, conjunctions, possessives, auxiliaries):
# a fragment ending on one is said with a falling end that sounds broken.
_LEANING_WORDS = """a an the of to in on at for with from by about into over under than as and or but nor so if that
    which who whose my your his her its our their this these those some any no every each what
    is are was were be been am will would can could should shall may might must do does did have has had
    not very just i i'm i'll i've i'd you we they he she it it's let's there there's"""
_LEANING = frozenset(_LEANING_WORDS.split())
# Words that lean on the word before them ("tell | me"): the head does not end just before one.
_LEANING_BACK = frozenset({"me", "us", "him", "them"})
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

    For a sentence that arrives whole (`speak`'s first, a bot's TTSSpeakFrame); the LLM's text is cut as it
    streams (`voiceclone.pipecat.quick_start`). A first clause goes alone when short, else the first words.

    Args:
        units: The sentence's units of synthesis (`voiceclone.tts.sentences.bound`).

    Returns:
        The same text, maybe in one more unit.
    """
    if not units:
        return units
    head = early_head(units[0])
    if head is None:
        return units
    rest = units[0][len(head) :].strip()
    if len(rest) >= QUICK_START_REST:
        return [head.strip(), rest, *units[1:]]
    return units


def pause_after(unit: str) -> float | None:
    """The silence to leave after a unit that does not end a sentence (seconds), or None after one that does."""
    end = _CLOSING.sub("", unit.rstrip())[-1:]
    if not end or end in SENTENCE_ENDS:
        return None
    return CLAUSE_PAUSE_S if end in ",;:-–—" else WORD_PAUSE_S


def early_head(text: str, first_words: int = FIRST_WORDS) -> str | None:
    """The start of `text` to speak ahead of its sentence: up to its first clause mark, else its first words.

    The first words are `first_words` of them, or up to `FIRST_WORDS_MAX` while the last one leans on the next
    (`_LEANING`: "the", "of", "is", ...) or the next leans on it ("tell me"); at `FIRST_WORDS_MAX` the head
    goes anyway. Only whole words followed by a space count (a word still being written may go on). None while
    there is not enough yet.
    """
    clause = _CLAUSE.search(text)
    if clause is not None and QUICK_START_CHARS[0] <= len(text[: clause.end()].strip()) <= QUICK_START_CHARS[1]:
        return text[: clause.end()]
    words = list(_WORD_END.finditer(text))
    for count in range(first_words, max(first_words, FIRST_WORDS_MAX) + 1):
        if len(words) < count:
            return None  # the next word may still go on, or lean on one not written yet
        leans_on_next = _bare(words[count - 1].group()) in _LEANING
        next_leans_back = len(words) > count and _bare(words[count].group()) in _LEANING_BACK
        if not leans_on_next and not next_leans_back:
            break
    return text[: words[count - 1].end()]


def _bare(word: str) -> str:
    """A word as `_LEANING` lists it: lower case, without quotes or brackets around it (apostrophes kept)."""
    return word.strip().strip("\"'()[]“”‘").replace("’", "'").lower()


def split_sentences(text: str, max_chars: int = MAX_UNIT_CHARS) -> list[str]:
    """The units of `text` to synthesise one at a time, in order, whitespace-normalised.

    Args:
        text: Any text; blank lines always end a sentence. Control characters are dropped (`speakable`).
        max_chars: The longest unit (at least 20 characters); longer sentences are cut at clause
            boundaries (, ; : dashes), then between words.

    Returns:
        Sentences (or parts of over-long ones), each non-empty and at most `max_chars` long unless a single
        word is longer.
    """
    units: list[str] = []
    for paragraph in re.split(r"\n\s*\n", speakable(text)):
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
