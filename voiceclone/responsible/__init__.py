"""Using a cloned voice responsibly: the speaker's consent, and a mark on everything the clone says.

`consent` (a package) holds the consent policy and records, the sentence a speaker reads to consent and the check
of it with the local Whisper model; `watermark` marks converted audio with Resemble's PerTh (whole or streamed)
and detects the mark; `perth_loader` loads PerTh's network from its wheel with a stand-in for the torchaudio it
imports but cannot have beside our torch.
"""
