"""Bot config files: the YAML a bot, `speak` and `config check` read, turned into validated settings.

`reading` parses a file safely (no alias bombs, no deep nesting) and fills `${VAR}` from the environment;
`sections` holds the settings models, one per section, with `BotConfig` the whole file; `loading` is the entry
point every command uses (`load_config`, and `resolve_config` for the shipped configs by name). Every problem is
a one-line `ConfigError` naming the file and the key.
"""
