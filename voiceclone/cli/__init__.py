"""The `voiceclone` command line (see `app.py`); `python -m voiceclone` and the root `cli.py` run `main`."""

from voiceclone.cli.app import app, main

__all__ = ["app", "main"]
