"""Request bodies of the web app: read with a size limit, and the signalling's JSON checked by pydantic models.

`read_body` is the one reader of a request body (the signalling's JSON here, the page's WAV upload in `api`): it
stops at its limit whatever Content-Length claims. `parse_json` turns a body into one of the request models: a
body that is not a JSON object is a 400, one with a wrong field a 422 whose one-line `detail` names the field
(`sdp: the offer sends no audio: ...`), the string the page's JavaScript shows.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal, Optional, TypeVar

from fastapi import HTTPException, Request
from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

MAX_JSON_BYTES = 256 * 1024  # an SDP offer is a few KiB
MAX_START_BYTES = 16 * 1024  # the prebuilt client's `/start` options: a few fields
MAX_JSON_DEPTH = 32  # arrays and objects inside each other; the signalling's own JSON is 3 deep

Body = TypeVar("Body", bound=BaseModel)


class OfferBody(BaseModel):
    """An SDP offer (`POST /api/offer`, `/sessions/{id}/api/offer`); unknown fields are ignored.

    `request_data` (or the prebuilt client's `requestData`): the caller's options, e.g. the voice; None falls back
    to what the `/start` session was given.
    """

    sdp: str
    type: Literal["offer"]
    pc_id: Optional[str] = None
    restart_pc: Annotated[bool, BeforeValidator(bool)] = False  # any truthy value asks for a restart
    request_data: Optional[dict] = Field(default=None, validation_alias=AliasChoices("request_data", "requestData"))

    @field_validator("sdp")
    @classmethod
    def _sends_audio(cls, sdp: str) -> str:
        if not sdp.strip():
            raise PydanticCustomError("sdp_empty", "the session description is empty")
        if "m=audio" not in sdp:
            raise PydanticCustomError("sdp_no_audio", "the offer sends no audio: the bot needs the caller's microphone")
        return sdp


class CandidateBody(BaseModel):
    """One ICE candidate, as pipecat's `IceCandidate` takes it (which refuses other keys)."""

    model_config = ConfigDict(extra="forbid")

    candidate: str
    sdp_mid: Optional[str]  # required, but a browser may give null for one of the two (aiortc needs either)
    sdp_mline_index: Optional[int]


class IceBody(BaseModel):
    """ICE candidates for a connection in progress (`PATCH /api/offer`); unknown fields are ignored."""

    pc_id: str
    candidates: list[CandidateBody] = Field(default_factory=list)


class StartBody(BaseModel):
    """The prebuilt client's `POST /start`: `body`, the options its offers fall back to; the rest is ignored."""

    body: dict = Field(default_factory=dict)


async def read_body(request: Request, limit: int, too_large: str) -> bytes:
    """The request's body, at most `limit` bytes: a 413 saying `too_large` beyond it, whatever Content-Length claims."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status_code=413, detail=too_large)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(status_code=413, detail=too_large)
    return bytes(body)


async def parse_json(request: Request, model: type[Body], limit: int = MAX_JSON_BYTES) -> Body:
    """The request's JSON object as `model`; 413 when larger than `limit`, 400 for anything not a JSON object or
    nested deeper than `MAX_JSON_DEPTH`, 422 naming the first field that is wrong.

    The body must be sent as JSON (415 otherwise): a `text/plain` POST is one a browser lets any other site send
    to this bot without asking it first, and four offers so sent would hold every call place for a minute.
    """
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise HTTPException(status_code=415, detail="send the request as JSON (Content-Type: application/json)")
    body = await read_body(request, limit, f"the request is larger than {limit // 1024} KiB")
    if json_depth(body) > MAX_JSON_DEPTH:  # before parsing: thousands of "[" would exhaust Python's recursion
        raise HTTPException(status_code=400, detail=f"the request's JSON is nested more than {MAX_JSON_DEPTH} deep")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise HTTPException(status_code=400, detail="the request body is not JSON") from None
    if not isinstance(data, dict):
        raise HTTPException(status_code=400, detail="the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise HTTPException(status_code=422, detail=_first_problem(exc)) from None


def _first_problem(exc: ValidationError) -> str:
    """`field: what is wrong` for the first error (`candidates.0.sdp_mid: Field required`)."""
    err = exc.errors()[0]
    field = ".".join(str(part) for part in err["loc"])
    return f"{field}: {err['msg']}" if field else err["msg"]


def json_depth(text: bytes | str) -> int:
    """How deeply arrays and objects nest in JSON text (brackets inside strings do not count); no parsing."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = deepest = 0
    for char in brackets:
        depth += 1 if char in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
