"""Consent to be cloned: a sentence the speaker reads aloud, checked with the local Whisper model, and a policy.

`policy` holds the consent policy (`check_policy`, `stored_consent`), the records a voice stores
(`ConsentRecord`, `text_consent`, `is_verified`) and `ConsentError`; `sentence` the sentence itself
(`consent_sentence`), its normalised `words` and how much of a recording is searched for it; `matching` finds the
stretch of what was heard that matches it and how well the name was heard; `verify` checks audio for it
(`verify_spoken_consent`, `verify_consent_file`, `locate_consent_end`) and makes the record `enroll` stores
(`enrollment_consent`).
"""
