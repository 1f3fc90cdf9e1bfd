"""What of a text a base voice can read: no terminal escape sequences, no control characters.

A NUL byte made Piper's espeak-ng phonemizer raise ("embedded null character"), and a colour code from a terminal
(ESC [31m) was read out as "31". Line breaks and tabs stay: they are white space to the sentence splitter.
"""

from __future__ import annotations

import re

_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")  # CSI sequences (colours, cursor), then 2-byte ones
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # C0 and C1 controls but tab, newline, return


def speakable(text: str) -> str:
    """`text` without escape sequences; other control characters become spaces (they may separate words)."""
    return _CONTROLS.sub(" ", _ESCAPES.sub("", text))
