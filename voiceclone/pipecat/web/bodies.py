"""Request bodies of the web app: read with a size limit, and the signalling's JSON checked by pydantic models.

`read_body` is the one reader of a request body (the signalling's JSON here, the page's WAV upload in `api`): it
stops at its limit whatever Content-Length claims. `parse_json` turns a body into one of the request models: a
body that is not a JSON object is a 400, one with a wrong field a 422 whose one-line `detail` names the field
(`sdp: the offer sends no audio: ...`), the string the page's JavaScript shows.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal, Optional, TypeVar

from fastapi import HTTPException, Request
from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

MAX_JSON_BYTES = 256 * 1024  # an SDP offer is a few KiB

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


async def parse_json(request: Request, model: type[Body]) -> Body:
    """The request's JSON object as `model`; 413 when too large for signalling, 400 for anything not a JSON
    object, 422 naming the first field that is wrong.
    """
    body = await read_body(request, MAX_JSON_BYTES, f"the request is larger than {MAX_JSON_BYTES // 1024} KiB")
    try:
        data = json.loads(body)
    except ValueError:
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
