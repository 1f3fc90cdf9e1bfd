"""Splitting text into sentences, so that each can be spoken (and converted) as soon as it is ready."""

from __future__ import annotations

import re

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "no", "fig", "inc", "ltd",
    "co", "mt", "approx", "dept", "est", "gen", "gov", "lt", "col", "sgt", "capt", "a.m", "p.m", "u.s",
}
_END = re.compile(r"([.!?…]+|[。！？])([\"'”’)\]]*)(\s+|$)")


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`, in order, stripped; blank lines always end a sentence."""
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        start = 0
        for match in _END.finditer(paragraph):
            end = match.end(2)
            candidate = paragraph[start:end].strip()
            word = candidate.rsplit(" ", 1)[-1].rstrip(".!?…\"'”’)]").lower()
            following = paragraph[match.end() : match.end() + 1]
            if match.group(1) == "." and (word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())):
                continue  # "Dr. Smith", "J. R. R. Tolkien"
            if match.group(1) == "." and following and following.islower():
                continue  # "... 3.5 m. away" and other lower-case continuations
            if candidate:
                sentences.append(candidate)
            start = match.end()
        rest = paragraph[start:].strip()
        if rest:
            sentences.append(rest)
    return sentences
