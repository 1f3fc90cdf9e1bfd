"""Errors the converter raises for problems a user can cause (a bad folder, a bad file)."""

from __future__ import annotations


class CheckpointError(Exception):
    """A converter folder, config or checkpoint that cannot be used; the message names the file and the key."""
