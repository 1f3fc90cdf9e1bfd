"""The voice library: enrolled voices on disk. `names` holds the name rule, the voice folder's file names and
size limits, and where the library is; `errors` the one-line `VoiceError` and the damage found in a file;
`record` voice.json as a typed record (`VoiceRecord`, read and written here alone) and the checks of an
embedding and a profile; `speech_file` the kept speech (FLAC) encoded, decoded and checked; `folder` one voice
folder as read (`Voice`, `VoiceEntry`); `store` the library itself (`VoiceLibrary`: writing atomically, the lock,
crash recovery); `archive` the .tar.gz export and the untrusted import; `lookup` a voice by name with its
consent policy applied (`find_voice`, `allowed_voice`)."""
