"""Turning recordings into a voice: read, keep the speech, check quality, embed, store.

Plain Python over the audio helpers, the VAD, the loaded converters and the voice library.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from voiceclone import __version__
from voiceclone.audio.quality import Quality, QualityMeter, SpeechSelection
from voiceclone.audio.reader import AudioError, AudioReader
from voiceclone.audio.resample import resample_blocks
from voiceclone.audio.speech import masked_blocks, speech_mask
from voiceclone.cloning.conversion import SPEECH_RATE, Conversion
from voiceclone.cloning.matcher_conversion import MatcherConversion
from voiceclone.cloning.openvoice_conversion import PIECE_S
from voiceclone.files import sha256_file
from voiceclone.voices.folder import Voice
from voiceclone.voices.lookup import choose_name, find_voice
from voiceclone.voices.names import MAX_SPEECH_S
from voiceclone.voices.record import EmbeddingEntry, SourceFile, VoiceRecord
from voiceclone.voices.store import VoiceLibrary

MIN_SPEECH_S = 3.0
GOOD_SPEECH_S = 10.0  # less still makes a voice, a worse one
NARROW_BAND_RATE = 16000  # below this a recording misses the voice's upper range (sibilants, the timbre's top)

Step = Callable[[str], None]


@dataclass
class Sample:
    """The speech of one or more recordings, at the converter's rate, ready to embed."""

    speech: np.ndarray
    sample_rate: int
    quality: Quality
    sources: list[SourceFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what reading the recordings found (a file given twice)

    def warnings(self) -> list[str]:
        """What makes the clone worse but not impossible: the recording's level, noise and clipping, a recording
        that carries no more than telephone bandwidth or no speech at all, little speech; and what was left out."""
        narrow = [
            f"{s.file}: recorded at {s.sample_rate} Hz (telephone quality): nothing of the voice above "
            f"{s.sample_rate / 2000:.0f} kHz is in it, so the clone will sound muffled; record at 16 kHz or more"
            for s in self.sources
            if s.sample_rate is not None and s.sample_rate < NARROW_BAND_RATE
        ]
        silent = [f"{s.file}: no speech found in it (left out)" for s in self.sources if s.speech_s == 0]
        amount = []
        if self.quality.speech_s < GOOD_SPEECH_S:
            amount.append(
                f"only {self.quality.speech_s:.1f} s of speech: {GOOD_SPEECH_S:.0f} s or more gives a better clone"
            )
        elif self.quality.speech_s > MAX_SPEECH_S + 1:
            amount.append(
                f"{self.quality.speech_s:.0f} s of speech: the cleanest {MAX_SPEECH_S:.0f} s are kept, which is plenty"
            )
        return self.quality.warnings() + narrow + silent + amount + self.notes


def prepare(paths: Sequence[str | Path], sample_rate: int, on_step: Step | None = None) -> Sample:
    """Read recordings, keep their speech (Silero VAD) and measure them; errors for what cannot work.

    Memory stays bounded whatever the recordings' length: each is read, resampled and searched for speech block
    by block, and of the speech only the cleanest `MAX_SPEECH_S` are kept (all of it when there is less).
    """
    step = on_step or (lambda _: None)
    meter, kept, sources = QualityMeter(sample_rate), SpeechSelection(sample_rate, MAX_SPEECH_S, PIECE_S), []
    notes, seen = [], set()
    for path in paths:
        path = Path(path)
        digest = sha256_file(path) if path.is_file() else None
        if digest is not None and digest in seen:  # the same speech twice would count twice
            notes.append(f"{path.name}: the same recording as one given before (used once)")
            continue
        seen.add(digest)
        step(f"reading {path.name}")
        samples = speech = 0
        with AudioReader(path) as reader:
            blocks = resample_blocks(reader.blocks(), reader.sample_rate, sample_rate)
            for audio, mask in masked_blocks(blocks, sample_rate, speech_mask):
                meter.add(audio, mask)
                kept.add(audio[mask])
                samples, speech = samples + len(audio), speech + int(np.count_nonzero(mask))
                step(f"finding speech in {path.name}: {samples / sample_rate:.0f} s read")
        sources.append(
            SourceFile(
                file=path.name,
                sha256=digest or sha256_file(path),
                duration_s=round(samples / sample_rate, 3),
                sample_rate=reader.sample_rate,
                speech_s=round(speech / sample_rate, 3),
            )
        )
    quality = meter.quality()
    names = ", ".join(s.file for s in sources)
    if quality.speech_s == 0:
        raise AudioError(f"{names}: no speech found; record someone speaking for 10 s or more")
    if quality.speech_s < MIN_SPEECH_S:
        raise AudioError(
            f"{names}: only {quality.speech_s:.1f} s of speech; at least {MIN_SPEECH_S:.0f} s is needed "
            f"(10 s or more gives a better clone)"
        )
    return Sample(kept.speech(), sample_rate, quality, sources, notes)


def create(
    library: VoiceLibrary,
    name: str,
    sample: Sample,
    conversions: Sequence[Conversion],
    force: bool = False,
    consent: str | None = None,
) -> Voice:
    """Store prepared speech as a voice, with each converter's data for it.

    Args:
        library: Where the voice is stored.
        name: Its name (checked).
        sample: The prepared speech and its quality report.
        conversions: The loaded converters: an embedding is stored for each OpenVoice one, a profile for each
            matcher one.
        force: Replace a voice of that name.
        consent: The speaker's consent record (or text), stored with the voice.

    Returns:
        The stored voice.
    """
    openvoice = [c for c in conversions if c.engine == "openvoice"]
    embeddings = {c.key: c.analyse(sample.speech, sample.sample_rate) for c in openvoice}
    profiles = {c.key: c.analyse(sample.speech, sample.sample_rate) for c in conversions if c.engine == "matcher"}
    record = VoiceRecord(
        name=name,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        sources=sample.sources,
        speech_seconds=round(len(sample.speech) / sample.sample_rate, 3),  # what is kept (at most 5 min)
        sample_rate=sample.sample_rate,
        quality=sample.quality.as_dict(),
        warnings=sample.warnings(),
        converter=(openvoice or conversions)[0].record(),
        embeddings={c.key: EmbeddingEntry.of(c.key, c.converter.checkpoint_sha256) for c in openvoice},
        consent=consent,
        voiceclone_version=__version__,
    )
    voice = library.save(name, record, sample.speech, sample.sample_rate, embeddings, force=force)
    for key, profile in profiles.items():  # should this be lost, it is rebuilt from the kept speech on first use
        voice = library.add_profile(voice, key, profile.to_json())
    return voice


def enroll(
    library: VoiceLibrary,
    paths: Sequence[str | Path],
    conversion: Conversion | Callable[[], Conversion],
    name: str | None = None,
    force: bool = False,
    consent: str | None = None,
    on_step: Step | None = None,
    sample_rate: int | None = None,
) -> tuple[Voice, Sample]:
    """Enroll recordings as a voice: name, speech, quality, the converters' data, stored atomically.

    The built-in matcher's profile is always made (it needs no weights); an OpenVoice embedding when the
    converter given is OpenVoice (otherwise it is made later, on first use, from the kept speech).

    Args:
        library: Where the voice is stored.
        paths: The recordings.
        conversion: A loaded `Conversion`, or a function that loads one: it is called only once the recordings
            have been read, so that a bad name or recording fails before any model loads.
        name: The voice's name; None takes the first file's.
        force: Replace a voice of that name.
        consent: The speaker's consent, stored with the voice.
        on_step: Called with a few words for each step (for a progress display).
        sample_rate: The rate to keep the speech at (default: 22050 Hz, the converters' rate).

    Returns:
        The stored voice and the prepared sample (with its quality report).
    """
    step = on_step or (lambda _: None)
    name = choose_name(library, paths, name, force)
    sample = prepare(paths, sample_rate or SPEECH_RATE, on_step)
    if not hasattr(conversion, "analyse"):
        step("loading the converter")
        conversion = conversion()
    step("making the voice")
    conversions = [conversion] if conversion.engine == "matcher" else [conversion, MatcherConversion()]
    return create(library, name, sample, conversions, force, consent), sample


def target_data(library: VoiceLibrary, voice: str, conversion) -> tuple[object, str]:
    """The data for `--voice` (see `find_voice`) for this converter, and a label; a file's is not stored."""
    found = find_voice(library, voice)
    if isinstance(found, Path):
        sample = prepare([found], conversion.sampling_rate)
        label = f"{found.name} ({sample.quality.speech_s:.1f} s of speech)"
        return conversion.analyse(sample.speech, sample.sample_rate), label
    return conversion.voice_data(library, found), f"voice {found.name!r}"
