"""The MPEG frame scanner: is an MP3 whole, and how many samples do its frames hold?

libsndfile (through libmpg123) decodes a damaged MP3 without a word, so `AudioReader` walks the frame headers
itself to catch what it would silently get wrong:

- an MP3 cut inside a frame, or missing its last bytes: libmpg123 drops the partial frame and, with no info
  header, libsndfile's length (estimated from the file's size) agrees with what it decoded;
- an MP3 with an info header (Xing, Info or VBRI) cut between two frames: it decodes as a shorter file;
- a variable-bitrate MP3 without an info header: libsndfile estimates its length from the first frame's bitrate
  and stops reading there (1.4 s of an 8 s recording), losing the rest;
- a trailing ID3v1, APEv2 or Lyrics3 tag cut short, which says the file was cut.

The cases are in tests/test_audio_input.py (MP3s made by sox and by libsndfile, cut in each of these ways).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

# An MP3 is a chain of frames, each starting with a 4-byte header that gives its length; see
# http://www.mp3-tech.org/programmer/frame_header.html. Tables are indexed by the header's bit fields.
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}  # MPEG-1, 2, 2.5
_KBPS_V1 = {
    3: (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),  # layer I
    2: (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),  # layer II
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # layer III
}
_KBPS_V2 = {
    3: (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    1: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_TRAILERS = (b"TAG", b"APETAGEX", b"LYRICS")  # tags that may follow the last frame
_RESYNC_BYTES = 65536  # how far to look for the next frame past junk (decoders give up sooner)


@dataclass(frozen=True)
class MpegFrame:
    """One frame as its header describes it."""

    length: int
    samples: int
    kind: tuple[int, int, int]  # version, layer, sample rate: the same in every frame of one stream
    mono: bool


@dataclass(frozen=True)
class MpegScan:
    """What walking a whole MP3's frames found."""

    complete: bool  # the last frame is whole and the info header's frame count (if any) is reached
    samples: int  # samples the audio frames hold
    samples_per_frame: int


def mpeg_frame(header: bytes) -> MpegFrame | None:
    """The frame a 4-byte header announces, or None if these bytes are not a usable frame header."""
    if len(header) < 4:
        return None
    h = int.from_bytes(header[:4], "big")
    version, layer, rate_index, kbps_index = (h >> 19) & 3, (h >> 17) & 3, (h >> 10) & 3, (h >> 12) & 15
    if h >> 21 != 0x7FF or version == 1 or layer == 0 or rate_index == 3 or kbps_index in (0, 15):
        return None  # no sync, reserved values, or free format (whose length no header says)
    rate = _MPEG_RATES[version][rate_index]
    kbps = (_KBPS_V1 if version == 3 else _KBPS_V2)[layer][kbps_index]
    padding = (h >> 9) & 1
    if layer == 3:  # layer I
        length, samples = (12000 * kbps // rate + padding) * 4, 384
    elif layer == 2 or version == 3:  # layer II, or MPEG-1 layer III
        length, samples = 144000 * kbps // rate + padding, 1152
    else:  # MPEG-2/2.5 layer III
        length, samples = 72000 * kbps // rate + padding, 576
    return MpegFrame(length, samples, (version, layer, rate), (h >> 6) & 3 == 3)


def mpeg_scan(path: Path) -> MpegScan | None:
    """Walk an MP3's frame headers: is its last frame whole, and how many samples do its frames hold?

    libsndfile's frame count for an MP3 without an info header is an estimate from the bitrate, so a shortfall
    against it proves nothing; a last frame that announces more bytes than the file has left does, and so does
    an info header (Xing, Info or VBRI) announcing more frames than there are.

    Returns:
        The scan, or None when no MPEG frames are found (nothing to say either way).
    """
    with open(path, "rb", buffering=1 << 16) as fh:
        size = os.fstat(fh.fileno()).st_size
        start = _skip_id3v2(fh)
        if start > size:  # cut inside the leading tag
            return MpegScan(False, 0, 1152)
        end = _audio_end(fh, start, size)
        found = _first_frame(fh, start, end)
        if found is None:
            return None
        pos, first = found
        announced = _announced_frames(fh, pos, first)
        frames, complete = _walk_frames(fh, pos, end, first.kind)
        audio_frames = frames - 1 if announced is not None else frames  # the info frame holds no audio
        # Some encoders count the info frame itself: allow one frame of difference rather than accuse a file.
        if announced is not None and frames < announced:
            complete = False
        return MpegScan(complete, max(0, audio_frames) * first.samples, first.samples)


def _walk_frames(fh, pos: int, end: int, kind: tuple) -> tuple[int, bool]:
    """Count whole frames from `pos`; False with the count if the stream ends inside a frame."""
    frames = 0
    while pos < end:
        fh.seek(pos)
        header = fh.read(4)
        frame = mpeg_frame(header)
        if frame is None or frame.kind != kind:
            resync = _next_frame(fh, pos + 1, min(end, pos + _RESYNC_BYTES), kind, limit=end)
            if resync is None:  # what remains is not frames: a cut-off tag or header says the file was cut
                fh.seek(pos)
                rest = fh.read(min(end - pos, 16))
                return frames, not (rest.startswith(_TRAILERS) or (len(rest) < 4 and rest[:1] == b"\xff"))
            pos = resync
            continue
        if pos + frame.length > end:
            return frames, False
        pos += frame.length
        frames += 1
    return frames, True


def _first_frame(fh, start: int, end: int) -> tuple[int, MpegFrame] | None:
    """The first frame at or after `start` (encoders put little or nothing before it)."""
    pos = _next_frame(fh, start, min(end, start + _RESYNC_BYTES), None, limit=end)
    if pos is None:
        return None
    fh.seek(pos)
    frame = mpeg_frame(fh.read(4))
    assert frame is not None
    return pos, frame


def _next_frame(fh, pos: int, end: int, kind: tuple | None, limit: int | None = None) -> int | None:
    """The next offset in [pos, end) holding a frame header that the following header confirms.

    A lone 0xFFE sync pattern occurs by chance inside audio data; two consecutive headers rarely do. `limit` is
    where the frames end (a frame that ends exactly there needs no following header).
    """
    limit = end if limit is None else limit
    fh.seek(pos)
    window = fh.read(max(0, end - pos))
    i = window.find(b"\xff")
    while i >= 0:
        frame = mpeg_frame(window[i : i + 4])
        if frame is not None and (kind is None or frame.kind == kind):
            after = pos + i + frame.length
            if after == limit:
                return pos + i
            if after < limit:
                fh.seek(after)
                following = mpeg_frame(fh.read(4))
                if following is not None and following.kind == frame.kind:
                    return pos + i
        i = window.find(b"\xff", i + 1)
    return None


def _announced_frames(fh, pos: int, frame: MpegFrame) -> int | None:
    """The frame count an info header (Xing/Info from LAME and most encoders, or VBRI) in the first frame gives."""
    fh.seek(pos)
    data = fh.read(min(frame.length, 256))
    side = (17 if frame.mono else 32) if frame.kind[0] == 3 else (9 if frame.mono else 17)
    for offset in (4 + side, 6 + side):  # after the side information, with or without a CRC
        if data[offset : offset + 4] in (b"Xing", b"Info") and len(data) >= offset + 12:
            flags = int.from_bytes(data[offset + 4 : offset + 8], "big")
            return int.from_bytes(data[offset + 8 : offset + 12], "big") if flags & 1 else None
    if data[36:40] == b"VBRI" and len(data) >= 54:
        return int.from_bytes(data[50:54], "big")
    return None


def _skip_id3v2(fh) -> int:
    """Where the audio starts after any ID3v2 tags (which may be chained)."""
    pos = 0
    while True:
        fh.seek(pos)
        head = fh.read(10)
        if len(head) < 10 or head[:3] != b"ID3":
            return pos
        size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
        pos += 10 + size + (10 if head[5] & 0x10 else 0)


def _audio_end(fh, start: int, size: int) -> int:
    """Where the frames end: before any ID3v1, APEv2 and Lyrics3v2 tags at the end of the file."""
    end = size
    while True:
        if end - 128 >= start and _read_at(fh, end - 128, 3) == b"TAG":
            end -= 128
        elif end - 32 >= start and _read_at(fh, end - 32, 8) == b"APETAGEX":
            footer = _read_at(fh, end - 32, 32)
            tag_size, flags = struct.unpack("<I", footer[12:16])[0], struct.unpack("<I", footer[20:24])[0]
            new_end = end - tag_size - (32 if flags & 0x80000000 else 0)
            if not start <= new_end < end:
                return end
            end = new_end
        elif end - 15 >= start and _read_at(fh, end - 9, 9) == b"LYRICS200":
            digits = _read_at(fh, end - 15, 6)
            if not digits.isdigit() or not start <= end - 15 - int(digits) < end:
                return end
            end -= 15 + int(digits)
        else:
            return end


def _read_at(fh, pos: int, n: int) -> bytes:
    fh.seek(pos)
    return fh.read(n)
