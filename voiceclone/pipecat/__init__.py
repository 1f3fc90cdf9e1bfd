"""The Pipecat side: the cloned-voice TTS service, the echo "LLM", transports and the bot pipeline.

Thin adapters over the plain-Python layers below; nothing here converts audio itself.
"""
