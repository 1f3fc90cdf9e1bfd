"""The command line: a thin layer that parses flags into settings, calls the layers below, and renders.

`app.py` assembles the commands (one module each, never importing another command's module); `common.py` holds
the consoles, output helpers and shared options, `bot_settings.py` what `run-bot` and `config check` share,
`describe.py` how a voice's record is worded.

The one place where the package's own imports are deferred: a command imports the layers that do its work
(torch, Pipecat: about 2 s) inside its function, so that `voiceclone --help`, `voices list` or a mistyped flag
answer at once; and it imports them only after checking its inputs with light modules (`config`, `config.needs`,
`voices.lookup`, `audio.reader`), so that a bad config, a missing file or an unknown voice is refused in about
half a second instead of 2-4. Every layer below imports at the top of its modules.
"""
