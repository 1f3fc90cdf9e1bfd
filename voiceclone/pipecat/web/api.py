"""The page's API: the voices a caller can pick, the consent sentence to read, and a voice made from a recording.

`POST /api/voices` takes an untrusted upload: a WAV only (checked by content type and by its header, not by a
name), at most `MAX_UPLOAD_BYTES`, decoded with the same reader as every other recording, stored under a name
of ours in a private temporary folder, then enrolled exactly as `voiceclone enroll` does. Enrolling runs on a
thread, one at a time, so calls in progress keep talking.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoint annotations at run time.
import asyncio
import hashlib
import re
import tempfile
import unicodedata
from datetime import date, datetime, timedelta
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from loguru import logger

from voiceclone.audio.reader import FORMATS, load_audio
from voiceclone.cloning.conversion import SPEECH_RATE
from voiceclone.cloning.enrollment import enroll, prepare
from voiceclone.errors import UserError
from voiceclone.pipecat.web.bodies import read_body
from voiceclone.responsible.consent.policy import is_verified, speaker_summary, stored_consent, words_verified
from voiceclone.responsible.consent.sentence import consent_sentence, latin_letters
from voiceclone.responsible.consent.verify import consent_opening
from voiceclone.voices.errors import VoiceError, VoiceExists
from voiceclone.voices.lookup import allowed_voice
from voiceclone.voices.names import check_name
from voiceclone.voices.record import VoiceRecord
from voiceclone.voices.store import VoiceLibrary

MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # 16-bit mono WAV: about 55 s at 48 kHz, ample for the ~15 s the page records
MAX_RECORDING_S = 60.0
WAV_TYPES = {"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"}
CONSENT_SOURCE = "browser page"
_SPEAKER = re.compile(r"[^\W_](?:(?:[^\W_]|[ .'-]){0,62}[^\W_])?")  # letters, digits, spaces, . ' -


class PageAPI:
    """The voices of one library, listed and enrolled for the page."""

    def __init__(self, library: VoiceLibrary, converter, default_voice: str, consent_policy: str = "recorded"):
        """A page API for `library`.

        Args:
            library: The bot's voices (new ones are enrolled here).
            converter: The bot's loaded `Conversion`, shared with the calls.
            default_voice: The bot's own voice.
            consent_policy: The consent policy (`recorded`, `required`, `off`): what a new voice stores.
        """
        self._library = library
        self._converter = converter
        self._default_voice = default_voice
        self._consent_policy = consent_policy
        self._enrolling = asyncio.Lock()

    def router(self) -> APIRouter:
        """`GET /api/voices`, `POST /api/voices` (a recording -> a voice), `GET /api/consent`."""
        router = APIRouter(prefix="/api")
        router.add_api_route("/voices", self.voices, methods=["GET"])
        router.add_api_route("/voices", self.enroll, methods=["POST"])
        router.add_api_route("/consent", self.consent, methods=["GET"])
        return router

    async def call_options(self, request_data: dict) -> dict:
        """A caller's options sent with the offer: `voice` (checked: an enrolled, usable voice); 400 otherwise.

        Args:
            request_data: The offer's `request_data`.

        Returns:
            `{"voice": name}`, or `{}` for the bot's own voice.
        """
        voice = request_data.get("voice")
        if voice is None or voice == self._default_voice:
            return {}
        await _user_errors_as_4xx(
            asyncio.to_thread(allowed_voice, self._library, voice, self._consent_policy, untrusted=True),
            hide=self._library.root,
        )
        return {"voice": voice}

    async def voices(self):
        """The usable voices: name, seconds of speech, when made, what consent they hold; the bot's default."""
        entries = await asyncio.to_thread(self._library.scan)
        voices = [_describe(entry.voice.record, entry.name) for entry in entries if entry.ok]
        return {"voices": voices, "default": self._default_voice}

    async def consent(self, request: Request):
        """The sentence a speaker reads at the start of a recording: `?speaker=NAME`."""
        speaker = _speaker(request.query_params.get("speaker"))
        day = datetime.now().date()
        sentence = await _user_errors_as_4xx(asyncio.to_thread(_sentence, speaker, day))
        return {"speaker": speaker, "date": day.isoformat(), "sentence": sentence}

    async def enroll(self, request: Request):
        """A WAV recording (body) -> a voice: `?name=VOICE&speaker=NAME&date=YYYY-MM-DD` (the consent's date).

        Returns:
            201 and the voice's name, the quality report and the consent record; 4xx with a one-line `detail`.
        """
        query = request.query_params
        name = await _user_errors_as_4xx(asyncio.to_thread(self._free_name, query.get("name")), hide=self._library.root)
        speaker = _speaker(query.get("speaker"))
        day = _consent_day(query.get("date"))
        _check_wav_type(request.headers.get("content-type"))
        body = await _read_upload(request)
        async with self._enrolling:  # one at a time: enrolling is CPU work the calls share
            report = await _user_errors_as_4xx(
                asyncio.to_thread(self._enroll, body, name, speaker, day), hide=self._library.root
            )
        logger.info(f"voice {name!r} enrolled from the page ({report['quality']['speech_s']:.1f} s of speech)")
        return JSONResponse(report, status_code=201)

    def _free_name(self, name) -> str:
        if not name:
            raise VoiceError("give the new voice a name (?name=...)")
        self._library.ensure_free(check_name(name))  # a taken name (in any letter case) is a 409
        return name

    def _enroll(self, body: bytes, name: str, speaker: str, day: date) -> dict:
        """Decode, check consent, enroll (on a thread). Messages never show the temporary folder."""
        with tempfile.TemporaryDirectory(prefix="voiceclone-upload-") as folder:
            path = Path(folder) / "recording.wav"
            path.write_bytes(body)
            try:
                audio, rate = load_audio(path)
                if len(audio) > MAX_RECORDING_S * rate:
                    raise UserError(f"the recording is {len(audio) / rate:.0f} s long; {MAX_RECORDING_S:.0f} s at most")
                prepare([path], SPEECH_RATE)  # the CLI's refusals (silence, too little speech) before consent's
                record = check_spoken_consent(audio, rate, body, speaker, day, self._consent_policy)
                voice, sample = enroll(self._library, [path], self._converter, name=name, consent=record)
            except VoiceExists:
                raise  # another upload took the name meanwhile: a 409
            except UserError as exc:
                message = str(exc).replace(str(path), "the recording").replace(path.name, "the recording")
                raise UserError(message.replace(f"use {FORMATS}", "the page sends WAV")) from None
        return {"voice": voice.name, "quality": _quality(sample.quality), "consent": record}


def check_spoken_consent(audio, sample_rate: int, upload: bytes, speaker: str, day: date, policy: str) -> dict | None:
    """The page's one consent check, the same as `voiceclone enroll`'s: the recording must open with the consent
    sentence naming the speaker, heard by the local Whisper model, and the rest must be the same voice.

    Args:
        audio: The decoded recording (mono float32).
        sample_rate: Its rate in Hz.
        upload: The uploaded bytes (their SHA-256 goes in the record).
        speaker: The name the sentence was shown with.
        day: The date the sentence was shown with.
        policy: The consent policy (`recorded`, `required`, `off`).

    Returns:
        The record to store in the voice (marked as spoken in the browser page), or None under `off`.

    Raises:
        ConsentError: one line showing what was heard, when the sentence was not recognised, or saying that
            another voice read it.
    """
    expected = consent_sentence(speaker, day)
    digest = hashlib.sha256(upload).hexdigest()
    record = consent_opening(audio, sample_rate, expected, source=CONSENT_SOURCE, file_sha256=digest)
    return stored_consent(policy, record)


def _sentence(speaker: str, day: date) -> str:
    return consent_sentence(speaker, day)


def _describe(record: VoiceRecord, name: str) -> dict:
    consent = record.consent
    kind = consent.get("kind", "recorded") if isinstance(consent, dict) else ("text" if consent else "none")
    if is_verified(consent):
        kind = f"{kind}, verified"
    elif words_verified(consent):
        kind = f"{kind}, {speaker_summary(consent.get('speaker_check'))}"
    return {
        "name": name,
        "speech_s": record.speech_seconds,
        "created": record.created,
        "consent": kind,
        "warnings": len(record.warnings),
    }


def _quality(quality) -> dict:
    return {
        "duration_s": round(quality.duration_s, 1),
        "speech_s": round(quality.speech_s, 1),
        "speech_level_dbfs": round(quality.speech_level_dbfs, 1),
        "clipped_percent": round(100 * quality.clipped_fraction, 2),
        "background": quality.background(),
        "warnings": quality.warnings(),
    }


def _speaker(value) -> str:
    """The speaker's name as the consent sentence shows it: 1-64 letters, digits, spaces, . ' or -."""
    name = unicodedata.normalize("NFC", " ".join((value or "").split()))  # "Å" typed either way is one name
    if not name or len(name) > 64 or not _SPEAKER.fullmatch(name):
        raise HTTPException(
            status_code=400, detail="type the speaker's name: 1-64 letters, digits, spaces, '.', ''' or '-'"
        )
    if not latin_letters(name):
        raise HTTPException(
            status_code=400,
            detail="type the speaker's name in Latin letters, as it sounds in English: the consent sentence is "
            "checked by an English speech recognizer",
        )
    return name


def _consent_day(value) -> date:
    """The date in the sentence the speaker read: today, or yesterday for a recording made around midnight."""
    today = datetime.now().date()
    if not value:
        return today
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise HTTPException(status_code=400, detail="'date' must be YYYY-MM-DD") from None
    if day not in (today, today - timedelta(days=1)):
        raise HTTPException(status_code=400, detail="the consent sentence must be today's: load it again and re-record")
    return day


def _check_wav_type(content_type: str | None) -> None:
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind not in WAV_TYPES:
        raise HTTPException(status_code=415, detail=f"send the recording as audio/wav (not {kind or 'nothing'})")


async def _read_upload(request: Request) -> bytes:
    """The body, at most `MAX_UPLOAD_BYTES` (413 beyond, whatever Content-Length claims), and a RIFF/WAVE one."""
    limit = f"the recording is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB; record less"
    body = await read_body(request, MAX_UPLOAD_BYTES, limit)
    if len(body) < 44 or body[:4] != b"RIFF" or body[8:12] != b"WAVE":
        raise HTTPException(status_code=415, detail="the recording is not a WAV file")
    return body


async def _user_errors_as_4xx(work, hide: Path | None = None):
    """Await `work`; a `UserError` becomes a 400 with its one-line message, a taken name a 409 worded for the page
    (not the CLI's "--force"). `hide`, the server's library folder, never appears in a message."""
    try:
        return await work
    except VoiceExists as exc:
        detail = f"a voice named {exc.name!r} already exists: choose another name"
        raise HTTPException(status_code=409, detail=detail) from None
    except UserError as exc:
        detail = str(exc)
        if hide is not None:
            detail = detail.replace(f" in {hide}", "").replace(str(hide), "the voice library")
        raise HTTPException(status_code=400, detail=detail) from None
