"""Speaking text to files, pipes and the sound card as the audio is made, and timing it."""

from __future__ import annotations

import contextlib
import io
import os
import queue
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from voiceclone.errors import UserError
from voiceclone.files import create_temp, reporting_write_errors, storage_error


class OutputError(UserError):
    """An output that cannot be written or played."""


_WAV_HEADER_BYTES = 44
_WAV_MAX_DATA = 0xFFFFFFFF - _WAV_HEADER_BYTES  # a RIFF file's sizes are 32-bit


def _wav_header(sample_rate: int, data_bytes: int) -> bytes:
    """The canonical 44-byte header of a 16-bit mono PCM WAV file holding `data_bytes` of samples."""
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        sample_rate,
        sample_rate * 2,
        2,
        16,
        b"data",
        data_bytes,
    )


def _pcm16(chunk: np.ndarray) -> bytes:
    """Float samples as 16-bit little-endian PCM by libsndfile's own conversion, the same for every sink."""
    buf = io.BytesIO()
    sf.write(buf, chunk, 8000, format="RAW", subtype="PCM_16", endian="LITTLE")
    return buf.getvalue()


# What `-o FILE` writes, by the file's suffix: (libsndfile format, subtype); None is our own WAV writer.
FILE_FORMATS: dict[str, tuple[str, str] | None] = {
    ".wav": None,
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
}


def check_output_file(path: Path) -> None:
    """Refuse, before any work, an output whose suffix names a format `speak` cannot write (none means WAV)."""
    suffix = Path(path).suffix.lower()
    if suffix and suffix not in FILE_FORMATS:
        formats = ", ".join(FILE_FORMATS)
        raise OutputError(f"{path}: cannot write {suffix!r} audio: name the file {formats} (or -o - for raw PCM)")


def file_sink(path: Path, sample_rate: int) -> FileSink:
    """The sink for `-o FILE`: WAV, FLAC, Ogg Vorbis or MP3 as the suffix says (WAV when there is none)."""
    check_output_file(path)
    encoding = FILE_FORMATS.get(Path(path).suffix.lower())
    return WavSink(path, sample_rate) if encoding is None else EncodedSink(path, sample_rate, *encoding)


class FileSink:
    """A file written as chunks come, into a temporary file renamed into place only when complete.

    A failed write keeps its errno and ends as one line naming the file; the old file, if any, is untouched.
    The file is created with the permissions the umask gives, like any file a program writes.
    """

    def __init__(self, path: Path, sample_rate: int):
        self.path = Path(path)
        if self.path.is_dir():
            raise OutputError(f"{self.path}: is a folder; give a file name such as {self.path / 'speech.wav'}")
        folder = self.path.parent
        if not folder.is_dir():
            raise OutputError(f"{folder}: folder not found for the output file")
        try:
            fd, self._tmp = create_temp(folder, f".{self.path.name}-", ".part")
        except OSError as exc:
            error = storage_error(exc, self.path) or OutputError(f"{self.path}: cannot write there ({exc.strerror})")
            raise error from None
        self._file = os.fdopen(fd, "wb")  # buffered: a write is whole or raises (a raw write may be short)
        self._rate = sample_rate
        self._done = False

    def write(self, chunk: np.ndarray) -> None:
        """Append samples."""
        raise NotImplementedError

    def close(self, complete: bool) -> None:
        """Finish the file (complete) or throw the partial one away, leaving any old file untouched."""
        try:
            if complete:
                self._guarded(self._finish)
        finally:
            if not self._done:
                self._abandon()
                with contextlib.suppress(OSError):  # a full disk fails the flush again: the file goes anyway
                    self._file.close()
                self._tmp.unlink(missing_ok=True)

    def _finish(self) -> None:
        """Complete the temporary file and rename it into place."""
        self._file.close()
        os.replace(self._tmp, self.path)
        self._done = True

    def _abandon(self) -> None:
        """Let go of an unfinished file."""

    def _guarded(self, write, *args) -> None:
        with reporting_write_errors(self.path):
            write(*args)


class WavSink(FileSink):
    """16-bit PCM WAV, written here rather than by libsndfile, which reports a full disk only as "System error."."""

    def __init__(self, path: Path, sample_rate: int):
        super().__init__(path, sample_rate)
        self._data_bytes = 0
        self._guarded(self._file.write, _wav_header(sample_rate, 0))

    def write(self, chunk: np.ndarray) -> None:
        """Append samples."""
        data = _pcm16(chunk)
        if self._data_bytes + len(data) > _WAV_MAX_DATA:
            raise OutputError(f"{self.path}: too long for a WAV file (4 GB); write raw PCM with -o - instead")
        self._guarded(self._file.write, data)
        self._data_bytes += len(data)

    def _finish(self) -> None:
        self._file.seek(0)
        self._file.write(_wav_header(self._rate, self._data_bytes))
        super()._finish()


class _KeptErrors:
    """The file libsndfile writes through: an OSError (a full disk) is kept to be raised with its errno.

    An exception raised inside libsndfile's write callback would be printed by cffi as a traceback and replaced
    by a bare "System error."."""

    def __init__(self, file):
        self._file = file
        self.error: OSError | None = None

    def write(self, data) -> int:
        if self.error is not None:
            return 0
        try:
            return self._file.write(data)
        except OSError as exc:
            self.error = exc
            return 0

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()


class EncodedSink(FileSink):
    """FLAC, Ogg Vorbis or MP3 by libsndfile, encoded as the chunks come."""

    def __init__(self, path: Path, sample_rate: int, format: str, subtype: str):
        super().__init__(path, sample_rate)
        self._through = _KeptErrors(self._file)
        self._encoder = None
        try:
            self._encoder = sf.SoundFile(
                self._through, "w", samplerate=sample_rate, channels=1, format=format, subtype=subtype
            )
        except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
            self.close(False)
            self._raise(exc, f"cannot write {format} at {sample_rate} Hz")

    def write(self, chunk: np.ndarray) -> None:
        """Encode and append samples."""
        try:
            self._encoder.write(np.asarray(chunk, dtype=np.float32))
        except (sf.LibsndfileError, RuntimeError, AssertionError) as exc:  # soundfile asserts on a short write
            self._raise(exc, "the encoder failed")
        if self._through.error is not None:  # libsndfile may not notice a short write until later
            self._raise(self._through.error, "")

    def _finish(self) -> None:
        try:
            self._encoder.close()
        except (sf.LibsndfileError, RuntimeError) as exc:
            self._raise(exc, "the encoder failed")
        if self._through.error is not None:
            self._raise(self._through.error, "")
        super()._finish()

    def _abandon(self) -> None:
        if self._encoder is not None and not self._encoder.closed:
            with contextlib.suppress(Exception):
                self._encoder.close()

    def _raise(self, exc: Exception, what: str):
        """The disk's own error when it caused the failure, else one line naming the file."""
        cause = self._through.error if isinstance(exc, sf.LibsndfileError | RuntimeError | AssertionError) else exc
        if isinstance(cause, OSError):
            raise storage_error(cause, self.path) or OutputError(f"{self.path}: {cause.strerror or cause}") from None
        raise OutputError(f"{self.path}: {what} ({exc})") from None


class RawSink:
    """Raw 16-bit little-endian mono PCM to a binary stream (standard output), flushed per chunk."""

    def __init__(self, stream=None):
        self._stream = stream or sys.stdout.buffer

    def write(self, chunk: np.ndarray) -> None:
        """Append samples (libsndfile's conversion, so that -o - equals the WAV's samples)."""
        try:
            self._stream.write(_pcm16(chunk))
            self._stream.flush()
        except BrokenPipeError:
            raise OutputError("standard output was closed by the reading program") from None
        except OSError as exc:  # e.g. `-o - > file` on a full disk
            raise storage_error(exc, "standard output") or OutputError(
                f"cannot write to standard output ({exc.strerror or exc})"
            ) from None

    def close(self, complete: bool) -> None:
        """Nothing to finish."""


class PlaybackSink:
    """The default output device, fed from a queue by its own thread so that making audio never waits."""

    def __init__(self, sample_rate: int):
        try:
            import sounddevice
        except OSError:
            raise OutputError(
                "--play needs the PortAudio library: install it (Debian/Ubuntu: apt-get install libportaudio2; "
                "macOS: brew install portaudio) or write a file with -o"
            ) from None
        try:
            self._stream = sounddevice.OutputStream(samplerate=sample_rate, channels=1, dtype="float32")
            self._stream.start()
        except Exception as exc:  # PortAudioError and friends: no device, busy device
            raise OutputError(f"cannot open the sound output ({exc}); write a file with -o instead") from None
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue()
        self.waited_s = 0.0  # time the device sat starved after playback began
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        started = False
        while True:
            t0 = time.perf_counter()
            chunk = self._queue.get()
            if started and chunk is not None:
                self.waited_s += max(0.0, time.perf_counter() - t0 - 0.005)
            if chunk is None:
                return
            started = True
            self._stream.write(chunk.astype(np.float32).reshape(-1, 1))

    def write(self, chunk: np.ndarray) -> None:
        """Queue samples for playback."""
        self._queue.put(chunk)

    def close(self, complete: bool) -> None:
        """Play out what is queued (complete) or stop at once."""
        if not complete:
            while not self._queue.empty():
                self._queue.get_nowait()
        self._queue.put(None)
        self._thread.join()
        self._stream.stop()
        self._stream.close()


@dataclass
class SpeakStats:
    """What a user sees at the end: how soon the first sound came and how fast the rest."""

    first_audio_s: float | None
    audio_s: float
    elapsed_s: float
    sentences: int

    @property
    def real_time_factor(self) -> float:
        """Seconds of work per second of audio (below 1 is faster than real time)."""
        return self.elapsed_s / self.audio_s if self.audio_s else float("nan")


def speak_to(
    sentences: Iterable[str],
    source: Callable[[str], Iterator[np.ndarray]],
    source_rate: int,
    sinks: list,
    out_rate: int,
    clock: Callable[[], float] = time.perf_counter,
    report: Callable[[str], None] | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> SpeakStats:
    """Feed every chunk of every sentence to the sinks as it is made, resampled to `out_rate`.

    `report`, when given, receives one line per sentence (when its first audio came, how much it made);
    `progress` receives (sentences done, seconds of audio made) after each sentence.
    """
    resampler = soxr.ResampleStream(source_rate, out_rate, 1, dtype="float32") if source_rate != out_rate else None
    start = clock()
    first: float | None = None
    samples = 0
    count = 0
    complete = False
    elapsed = 0.0
    try:
        for sentence in sentences:
            count += 1
            began, sentence_first, sentence_samples, chunks = clock(), None, 0, 0
            for chunk in source(sentence):
                out = resampler.resample_chunk(chunk) if resampler else chunk
                if len(out) == 0:
                    continue
                if first is None:
                    first = clock() - start
                if sentence_first is None:
                    sentence_first = clock() - began
                for sink in sinks:
                    sink.write(out)
                samples += len(out)
                sentence_samples += len(out)
                chunks += 1
            if report is not None:
                took = clock() - began
                report(
                    f"sentence {count}: {sentence_samples / out_rate:.2f} s of audio in {chunks} chunks, first after "
                    f"{(sentence_first or 0) * 1000:.0f} ms, all after {took * 1000:.0f} ms: {sentence[:60]!r}"
                )
            if progress is not None:
                progress(count, samples / out_rate)
        if resampler:
            tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if len(tail):
                for sink in sinks:
                    sink.write(tail)
                samples += len(tail)
        if samples == 0:  # e.g. "...": no file that holds nothing, no "real-time factor nan"
            raise OutputError("nothing was spoken: the text has no words the voice can say")
        elapsed = clock() - start  # before closing: a player may still be playing out its queue
        complete = True
    finally:
        for sink in sinks:
            sink.close(complete)
    return SpeakStats(first, samples / out_rate, elapsed, count)
