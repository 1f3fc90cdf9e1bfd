"""The command line: a thin layer that parses flags into settings, calls the layers below, and renders.

`app.py` assembles the commands (one module each, never importing another command's module); `common.py` holds
the consoles, output helpers and shared options, `bot_settings.py` what `run-bot` and `config check` share,
`describe.py` how a voice's record is worded.

The one place where the package's own imports are deferred: a command imports the layers that do its work
(torch, Pipecat: about 2 s) inside its function, so that `voiceclone --help`, `voices list` or a mistyped flag
answer at once. Every layer below imports at the top of its modules.
"""
