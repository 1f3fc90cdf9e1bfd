"""`voiceclone speak`'s streaming output: `run` feeds every chunk of every sentence to the sinks as it is made
and times it (`speak_to`, `SpeakStats`); `sinks` writes files (WAV, FLAC, Ogg Vorbis, MP3) into place only when
complete, or raw PCM to standard output; `playback` plays to the sound card from its own thread."""
