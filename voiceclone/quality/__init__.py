"""Measuring how good a clone is, apart from the conversion path (which never imports this package).

`transcribe` is the local Whisper tiny.en speech recogniser (also used to check spoken consent); `measures` holds
the speaker embedding, cosine and utterance similarity, the split-half ceiling and the word error rate;
`evaluation` lets each voice speak held-out sentences and reports the measures with a one-line verdict
(`voiceclone eval`).
"""
