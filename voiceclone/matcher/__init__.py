"""The voice matcher: voice conversion with no model weights, by WORLD analysis and resynthesis.

from voiceclone.matcher import VoiceMatcher, extract_profile

base = extract_profile(base_voice_speech, 22050)      # once per base voice, cacheable (`to_json`)
person = extract_profile(enrollment_speech, 16000)     # once per enrolled voice, stored with it
matcher = VoiceMatcher(22050)
for chunk in matcher.convert_stream(base_voice_audio, base, person):
    play(chunk)
"""

from voiceclone.matcher.converter import VoiceMatcher
from voiceclone.matcher.profile import MATCHER_VERSION, ProfileError, VoiceProfile, extract_profile

__all__ = ["MATCHER_VERSION", "ProfileError", "VoiceMatcher", "VoiceProfile", "extract_profile"]
