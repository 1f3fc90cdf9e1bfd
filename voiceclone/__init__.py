"""voiceclone: talk with an AI in a cloned voice (OpenVoice tone-color conversion, Pipecat voice bots)."""

__version__ = "0.1.0"
