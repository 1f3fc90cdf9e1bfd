"""Turning recordings into a voice: read, keep the speech, check quality, embed, store.

Plain Python over the audio helpers, the VAD, a loaded converter and the voice library.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import __version__
from .audio import AudioError, Quality, load_audio, measure, resample
from .speech import speech_mask
from .voices import Voice, VoiceError, VoiceLibrary, check_name

MIN_SPEECH_S = 3.0
PIECE_S = 10.0  # the reference cuts speech into pieces of about 10 s and averages their embeddings

Step = Callable[[str], None]


@dataclass
class Sample:
    """The speech of one or more recordings, at the converter's rate, ready to embed."""

    speech: np.ndarray
    sample_rate: int
    quality: Quality
    sources: list[dict] = field(default_factory=list)


def default_name(path: str | Path) -> str:
    """A voice name from a file name: its stem, with characters a name may not hold replaced by '-'."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(path).stem).strip("-._")
    return stem[:64] or "voice"


def prepare(paths: Sequence[str | Path], sample_rate: int, on_step: Step | None = None) -> Sample:
    """Read recordings, keep their speech (Silero VAD) and measure them; errors for what cannot work."""
    step = on_step or (lambda _: None)
    audio_parts, mask_parts, sources = [], [], []
    for path in paths:
        path = Path(path)
        step(f"reading {path.name}")
        audio, sr = load_audio(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        audio = resample(audio, sr, sample_rate)
        step(f"finding speech in {path.name}")
        mask = speech_mask(audio, sample_rate)
        sources.append(
            {
                "file": path.name,
                "sha256": digest,
                "duration_s": round(len(audio) / sample_rate, 3),
                "sample_rate": sr,
                "speech_s": round(float(mask.sum()) / sample_rate, 3),
            }
        )
        audio_parts.append(audio)
        mask_parts.append(mask)
    audio, mask = np.concatenate(audio_parts), np.concatenate(mask_parts)
    quality = measure(audio, sample_rate, mask)
    names = ", ".join(s["file"] for s in sources)
    if not mask.any():
        raise AudioError(f"{names}: no speech found; record someone speaking for 10 s or more")
    if quality.speech_s < MIN_SPEECH_S:
        raise AudioError(
            f"{names}: only {quality.speech_s:.1f} s of speech; at least {MIN_SPEECH_S:.0f} s is needed "
            f"(10 s or more gives a better clone)"
        )
    return Sample(audio[mask], sample_rate, quality, sources)


def embed(converter, speech: np.ndarray) -> np.ndarray:
    """The voice's embedding: the mean over pieces of about 10 s, as the reference makes it."""
    pieces = max(1, round(len(speech) / converter.sampling_rate / PIECE_S))
    return converter.extract_se(np.array_split(speech, pieces)).numpy()


def choose_name(library: VoiceLibrary, paths: Sequence[str | Path], name: str | None, force: bool) -> str:
    """The voice's name (default: the first file's stem), checked, and free unless `force`."""
    if not paths:
        raise VoiceError("give at least one recording to enroll")
    name = check_name(name if name is not None else default_name(paths[0]))
    library.ensure_free(name, force)  # fail before the work; `save` checks again
    return name


def create(
    library: VoiceLibrary, name: str, sample: Sample, converter, force: bool = False, consent: str | None = None
) -> Voice:
    """Embed prepared speech and store it as a voice."""
    embedding = embed(converter, sample.speech)
    checkpoint = converter.checkpoint_sha256
    meta = {
        "name": name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sources": sample.sources,
        "speech_seconds": round(sample.quality.speech_s, 3),
        "sample_rate": sample.sample_rate,
        "quality": sample.quality.as_dict(),
        "warnings": sample.quality.warnings(),
        "converter": {"version": converter.version, "checkpoint_sha256": checkpoint},
        "embeddings": {converter.version: {"file": f"embedding-{converter.version}.npy", "checkpoint_sha256": checkpoint}},
        "consent": consent,
        "voiceclone_version": __version__,
    }
    return library.save(name, meta, sample.speech, sample.sample_rate, {converter.version: embedding}, force=force)


def enroll(
    library: VoiceLibrary,
    paths: Sequence[str | Path],
    converter,
    name: str | None = None,
    force: bool = False,
    consent: str | None = None,
    on_step: Step | None = None,
) -> tuple[Voice, Sample]:
    """Enroll recordings as a voice: name, speech, quality, embedding, stored atomically."""
    name = choose_name(library, paths, name, force)
    sample = prepare(paths, converter.sampling_rate, on_step)
    return create(library, name, sample, converter, force, consent), sample


def embedding_for(library: VoiceLibrary, voice: Voice, converter) -> np.ndarray:
    """The voice's embedding for this converter; re-made from the stored speech when the version or weights differ."""
    stored = voice.embedding(converter.version)
    made_by = voice.embedding_checkpoint(converter.version)
    if stored is not None and (made_by is None or made_by == converter.checkpoint_sha256):
        return stored
    speech, sr = voice.speech()
    embedding = embed(converter, resample(speech, sr, converter.sampling_rate))
    library.add_embedding(voice, converter.version, embedding, converter.checkpoint_sha256)
    return embedding


AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif"}


def target_embedding(library: VoiceLibrary, voice: str, converter) -> tuple[np.ndarray, str]:
    """The embedding for `--voice`: an enrolled name, or an audio file cloned on the fly (not stored)."""
    path = Path(voice).expanduser()
    if path.exists() or path.suffix.lower() in AUDIO_SUFFIXES or "/" in voice:
        sample = prepare([path], converter.sampling_rate)
        return embed(converter, sample.speech), f"{path.name} ({sample.quality.speech_s:.1f} s of speech)"
    found = library.get(voice)
    return embedding_for(library, found, converter), f"voice {found.name!r}"
