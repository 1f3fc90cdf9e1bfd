"""Where `speak` writes its audio as it is made: a file (WAV, FLAC, Ogg Vorbis or MP3) or raw PCM on a pipe."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from voiceclone.audio.pcm import PCM16_BYTES, pcm16, to_int16, wav_writer
from voiceclone.errors import UserError
from voiceclone.files import create_temp, rename_target, reporting_write_errors, storage_error


class OutputError(UserError):
    """An output that cannot be written or played."""


_WAV_HEADER_BYTES = 44
_WAV_MAX_DATA = 0xFFFFFFFF - _WAV_HEADER_BYTES  # a RIFF file's sizes are 32-bit

# What `-o FILE` writes, by the file's suffix: (libsndfile format, subtype); None is the `wave` module's writer.
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
    """A file written as chunks come, into a temporary file renamed into place only when complete (through a
    symbolic link, to the file it points at).

    A failed write keeps its errno and ends as one line naming the file; the old file, if any, is untouched.
    The file is created with the permissions the umask gives, like any file a program writes.
    """

    def __init__(self, path: Path, sample_rate: int):
        self.path = Path(path)
        if self.path.is_dir():
            raise OutputError(f"{self.path}: is a folder; give a file name such as {self.path / 'speech.wav'}")
        self._target = rename_target(self.path)  # through a link; never over a device or a pipe
        folder = self._target.parent
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
        os.replace(self._tmp, self._target)
        self._done = True

    def _abandon(self) -> None:
        """Let go of an unfinished file."""

    def _guarded(self, write, *args) -> None:
        with reporting_write_errors(self.path):
            write(*args)


class WavSink(FileSink):
    """16-bit PCM WAV by the standard `wave` module, not libsndfile, which reports a full disk only as "System
    error."; the header's sizes are patched when the file is complete."""

    def __init__(self, path: Path, sample_rate: int):
        super().__init__(path, sample_rate)
        self._data_bytes = 0
        with reporting_write_errors(self.path):
            self._wav = wav_writer(self._file, sample_rate)

    def write(self, chunk: np.ndarray) -> None:
        """Append samples."""
        samples = to_int16(chunk)
        if self._data_bytes + len(samples) * PCM16_BYTES > _WAV_MAX_DATA:
            raise OutputError(f"{self.path}: too long for a WAV file (4 GB); write raw PCM with -o - instead")
        self._guarded(self._wav.writeframesraw, samples)
        self._data_bytes += len(samples) * PCM16_BYTES

    def _finish(self) -> None:
        self._wav.close()  # patches the header's sizes; the file stays open
        super()._finish()

    def _abandon(self) -> None:
        with contextlib.suppress(Exception):  # a full disk fails again: the file goes anyway
            self._wav.close()  # now, not when garbage collected, after the file is closed


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
        # Seeking flushes what is buffered: a full disk shows here too (an encoder rewriting its header at the end).
        if self.error is not None:
            return -1
        try:
            return self._file.seek(offset, whence)
        except OSError as exc:
            self.error = exc
            return -1

    def tell(self) -> int:
        return self._file.tell()


class EncodedSink(FileSink):
    """FLAC, Ogg Vorbis or MP3 by libsndfile, encoded as the chunks come, from the same 16-bit samples as WAV."""

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
            self._encoder.write(to_int16(chunk))
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
        # libsndfile's own words, without soundfile's "Error opening <object at 0x...>:" before them
        detail = " ".join(str(getattr(exc, "error_string", None) or exc).split()).removeprefix("Error : ")
        raise OutputError(f"{self.path}: {what} ({detail})") from None


class RawSink:
    """Raw 16-bit little-endian mono PCM to a binary stream (standard output), flushed per chunk."""

    def __init__(self, stream=None):
        self._stream = stream or sys.stdout.buffer

    def write(self, chunk: np.ndarray) -> None:
        """Append samples (`pcm16`, so that -o - equals the WAV's samples)."""
        try:
            self._stream.write(pcm16(chunk))
            self._stream.flush()
        except BrokenPipeError:
            raise OutputError("standard output was closed by the reading program") from None
        except OSError as exc:  # e.g. `-o - > file` on a full disk
            raise storage_error(exc, "standard output") or OutputError(
                f"cannot write to standard output ({exc.strerror or exc})"
            ) from None

    def close(self, complete: bool) -> None:
        """Nothing to finish."""
