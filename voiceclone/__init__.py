"""voiceclone: talk with an AI in a cloned voice (OpenVoice tone-color conversion, Pipecat voice bots)."""

from voiceclone.cpu import one_blas_thread

__version__ = "0.1.0"

one_blas_thread()  # first, before numpy loads (voiceclone.cpu says why)
