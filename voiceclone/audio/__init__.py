"""Audio in and the measurements a voice needs: `reader` reads any common file as float32 mono block by block and
refuses damaged ones in one line, with `mp3` walking an MP3's frames to catch what libsndfile would silently
mis-read; `resample` changes the sample rate (soxr); `speech` finds the speech (Silero VAD, in pieces for long
recordings); `quality` measures levels, clipping and background and keeps the cleanest speech; `pcm` holds the
one float -> 16-bit PCM conversion and the one WAV writer."""
