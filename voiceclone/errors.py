"""The base of every error a user can cause: the CLI prints its message on one line and exits non-zero."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix (a file, a name, a setting); the message says what and how."""
