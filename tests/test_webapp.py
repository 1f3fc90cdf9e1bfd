"""The WebRTC bot's web app without a browser: our page's files, its API, the offer endpoints, the session limit,
enrolling from an upload, and every malformed request answered with a 4xx and a one-line message.

Calls are stand-ins (a coroutine that waits): what is tested here is the app, not the pipeline.
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import re
import threading
import weakref
from datetime import date

import numpy as np
import pytest
import soundfile as sf
import soxr
from fastapi import APIRouter
from fastapi.testclient import TestClient

from voiceclone.pipecat.web import STATIC_DIR

PASSAGE = "When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow."


@pytest.fixture(scope="module")
def library(tmp_path_factory, recordings):
    """A library with bob and carol, made with the built-in matcher (fast, no checkpoint)."""
    from voiceclone.cloning.enrollment import enroll
    from voiceclone.cloning.matcher_conversion import MatcherConversion
    from voiceclone.voices.store import VoiceLibrary

    lib = VoiceLibrary(tmp_path_factory.mktemp("web-voices"))
    for name in ("bob", "carol"):
        enroll(lib, [recordings[name]], MatcherConversion(), name=name)
    return lib


class Calls:
    """Stand-in calls: each waits until the test ends it; what each was asked for is kept."""

    def __init__(self):
        self.options: list[dict] = []
        self.connections: list[weakref.ref] = []  # each call's connection, held weakly
        self.hang_up = threading.Event()

    async def run(self, connection, options: dict) -> None:
        self.options.append(options)
        self.connections.append(weakref.ref(connection))
        while not self.hang_up.is_set():
            await asyncio.sleep(0.05)


def poll(check, tries: int) -> None:
    """Look every 50 ms, at most `tries` times, until `check()` is true (the caller asserts what it waited for)."""
    for _ in range(tries):
        if check():
            return
        threading.Event().wait(0.05)


def make_client(library, calls: Calls | None = None, max_sessions: int = 4, ice_servers=None, routes=()):
    from voiceclone.cloning.matcher_conversion import MatcherConversion
    from voiceclone.pipecat.web.api import PageAPI
    from voiceclone.pipecat.web.app import create_app

    page = PageAPI(library, MatcherConversion(), "bob")
    app = create_app(
        (calls or Calls()).run,
        check_options=page.call_options,
        routes=[page.router(), *routes],
        max_sessions=max_sessions,
        ice_servers=ice_servers,
    )
    return TestClient(app)


@pytest.fixture
def client(library):
    with make_client(library) as c:
        yield c


def browser_offer() -> dict:
    """A real SDP offer with an audio track, as a browser would post it (made by aiortc)."""

    async def make():
        from aiortc import RTCPeerConnection

        pc = RTCPeerConnection()
        pc.addTransceiver("audio", direction="sendrecv")
        pc.createDataChannel("chat")
        await pc.setLocalDescription(await pc.createOffer())
        offer = {"sdp": pc.localDescription.sdp, "type": "offer"}
        await pc.close()
        return offer

    return asyncio.run(make())


def wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def spoken(text: str, rate: int = 48000) -> np.ndarray:
    """`text` read by the bundled Piper voice at `rate`."""
    from voiceclone.tts import PiperEngine, PiperSettings

    engine = PiperEngine(PiperSettings(noise_scale=0.0, noise_w_scale=0.0))
    return soxr.resample(engine.synthesize(text), engine.sample_rate, rate).astype(np.float32)


# ------------------------------------------------------------------------------------------------ the page
def test_the_page_is_ours_at_the_root_and_the_prebuilt_client_stays(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<audio id="bot-audio"' in page.text and "/static/app.js" in page.text
    for name in ("app.js", "call.js", "recorder.js", "recorder-worklet.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200, name
    assert "javascript" in client.get("/static/app.js").headers["content-type"]
    assert client.get("/client/").status_code == 200


def test_the_page_loads_nothing_from_elsewhere():
    """No CDN, no web fonts, no STUN server written into the page: it must work with no internet."""
    outside = re.compile(
        r"""(src|href)\s*=\s*["']?(https?:)?//|from\s+["']https?:|url\(\s*["']?https?:|@import|stun:"""
    )
    for path in STATIC_DIR.iterdir():
        assert not outside.search(path.read_text()), f"{path.name} refers to something outside the bot"


def test_config_has_no_ice_servers_unless_configured(library):
    with make_client(library) as c:
        assert c.get("/api/config").json() == {"ice_servers": [], "max_sessions": 4, "calls": 0}
    from aiortc import RTCIceServer

    servers = [RTCIceServer(urls="turn:turn.example.org:3478", username="u", credential="p")]
    with make_client(library, ice_servers=servers, max_sessions=2) as c:
        config = c.get("/api/config").json()
    assert config["ice_servers"] == [{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p"}]
    assert config["max_sessions"] == 2


def test_voices_are_listed_with_the_default(client):
    body = client.get("/api/voices").json()
    assert [v["name"] for v in body["voices"]] == ["bob", "carol"]
    assert body["default"] == "bob"
    assert all(v["speech_s"] > 3 for v in body["voices"])


def test_the_consent_sentence_names_the_speaker_and_today(client):
    body = client.get("/api/consent", params={"speaker": "  Alice   Smith "}).json()
    assert body["speaker"] == "Alice Smith" and body["date"] == date.today().isoformat()
    assert "Alice Smith" in body["sentence"] and str(date.today().year) in body["sentence"]
    for bad in ("", "<script>", "x" * 65, "_", "a_b", "张伟", "\U0001d504"):
        response = client.get("/api/consent", params={"speaker": bad})
        assert response.status_code == 400 and "name" in response.json()["detail"], bad
    decomposed, composed = "A\u030angstr\u00f6m", "\u00c5ngstr\u00f6m"  # "Ångström" typed two ways: one name
    assert client.get("/api/consent", params={"speaker": decomposed}).json()["speaker"] == composed


# ------------------------------------------------------------------------------------------------ offers
@pytest.mark.parametrize(
    ("body", "content_type", "status", "words"),
    [
        (b"{not json", "application/json", 400, "not JSON"),
        (b"[1, 2]", "application/json", 400, "JSON object"),
        (b"{}", "application/json", 422, "sdp: Field required"),
        (json.dumps({"sdp": "v=0 m=audio", "type": "answer"}).encode(), "application/json", 422, "type: "),
        (json.dumps({"sdp": " ", "type": "offer"}).encode(), "application/json", 422, "sdp: "),
        (
            json.dumps({"sdp": "v=0\r\n", "type": "offer"}).encode(),
            "application/json",
            422,
            "sdp: the offer sends no audio",
        ),
        (json.dumps({"sdp": "v=0 m=audio", "type": "offer", "pc_id": 7}).encode(), "application/json", 422, "pc_id: "),
        (
            json.dumps({"sdp": "v=0 m=audio", "type": "offer", "request_data": 3}).encode(),
            "application/json",
            422,
            "request_data: ",
        ),
        (json.dumps({"sdp": "v=0 m=audio", "type": "offer"}).encode(), "text/plain", 415, "Content-Type: application"),
        (json.dumps({"sdp": "v=0 m=audio", "type": "offer"}).encode(), "", 415, "send the request as JSON"),
        (b"{" + b" " * 300_000 + b"}", "application/json", 413, "larger"),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400, "nested"),
        (
            b'{"sdp": "m=audio", "type": "offer", "request_data": {"a": ' + b"[" * 200 + b"]" * 200 + b"}}",
            "application/json; charset=utf-8",
            400,
            "nested",
        ),
    ],
)
def test_malformed_offers_get_a_4xx_with_a_message(client, body, content_type, status, words):
    response = client.post("/api/offer", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status
    assert words in response.json()["detail"]


def test_an_offer_that_cannot_be_used_is_a_400(client):
    response = client.post("/api/offer", json={"sdp": "v=0\r\nm=audio nonsense\r\n", "type": "offer"})
    assert response.status_code == 400 and "cannot be used" in response.json()["detail"]
    response = client.post("/api/offer", json={"sdp": "m=audio garbage", "type": "offer"})
    assert response.json()["detail"] == "the offer cannot be used: its session description (SDP) is not valid"


def test_an_offer_for_an_unknown_voice_is_refused_before_any_call(library):
    calls = Calls()
    with make_client(library, calls) as c:
        offer = browser_offer()
        for voice, words in (("nobody", "no voice named 'nobody'"), ("../bob", "bad voice name"), (7, "bad voice")):
            response = c.post("/api/offer", json={**offer, "request_data": {"voice": voice}})
            assert response.status_code == 400 and words in response.json()["detail"]
        assert calls.options == []


def test_the_voice_asked_for_reaches_the_call(library):
    calls = Calls()
    with make_client(library, calls) as c:
        assert c.post("/api/offer", json={**browser_offer(), "request_data": {"voice": "carol"}}).status_code == 200
        assert c.post("/api/offer", json=browser_offer()).status_code == 200
        calls.hang_up.set()
    assert calls.options == [{"voice": "carol"}, {}]


def test_ice_and_session_requests_are_checked(client):
    cases = [
        ("patch", "/api/offer", {"pc_id": "nope", "candidates": []}, 404),
        ("patch", "/api/offer", {"candidates": []}, 422),
        ("patch", "/api/offer", {"pc_id": "x", "candidates": [{"candidate": "x"}]}, 422),
        ("patch", "/api/offer", {"pc_id": "x", "candidates": "x"}, 422),
        ("post", "/sessions/unknown/api/offer", {"sdp": "v=0", "type": "offer"}, 404),
    ]
    for method, url, body, status in cases:
        response = getattr(client, method)(url, json=body)
        assert response.status_code == status, (url, body)
        assert isinstance(response.json()["detail"], str)
    missing = client.patch("/api/offer", json={"pc_id": "x", "candidates": [{"candidate": "x"}]}).json()["detail"]
    assert missing == "candidates.0.sdp_mid: Field required"
    session = client.post("/start", json={"body": {}}).json()["sessionId"]
    assert client.post(f"/sessions/{session}/something", json={}).status_code == 404


def test_the_session_limit_refuses_the_next_caller_with_a_message_until_a_call_ends(library):
    calls = Calls()
    with make_client(library, calls, max_sessions=2) as c:
        offer = browser_offer()
        assert c.post("/api/offer", json=offer).status_code == 200
        session = c.post("/start", json={"body": {}}).json()["sessionId"]
        assert c.post(f"/sessions/{session}/api/offer", json=offer).status_code == 200
        assert c.get("/api/config").json()["calls"] == 2
        refused = c.post("/api/offer", json=offer)
        assert refused.status_code == 503
        assert "busy" in refused.json()["detail"] and "max_sessions" in refused.json()["detail"]
        calls.hang_up.set()  # both calls end: their places are freed and the session is forgotten
        poll(lambda: c.get("/api/config").json()["calls"] == 0, tries=100)
        assert c.get("/api/config").json()["calls"] == 0
        assert c.post(f"/sessions/{session}/api/offer", json=offer).status_code == 404
        calls.hang_up.clear()
        assert c.post("/api/offer", json=offer).status_code == 200
        calls.hang_up.set()


def test_an_ended_call_lets_go_of_its_connection_at_once(library):
    """The connection of an ended call (and with it, in a real call, the pipeline, resamplers and their FFmpeg
    threads) is freed when the call ends, not when the app's connect check comes due a minute later."""
    calls = Calls()
    with make_client(library, calls) as c:
        assert c.post("/api/offer", json=browser_offer()).status_code == 200
        poll(lambda: calls.connections, tries=100)
        calls.hang_up.set()
        poll(lambda: c.get("/api/config").json()["calls"] == 0, tries=200)
        assert c.get("/api/config").json()["calls"] == 0
        gc.collect()
        assert calls.connections and calls.connections[0]() is None, "the ended call's connection is still held"


class CyclicCalls(Calls):
    """Calls that, like a real pipeline, leave their connection inside reference cycles when they end."""

    async def run(self, connection, options: dict) -> None:
        pipeline = {"connection": connection}
        pipeline["self"] = pipeline  # a processor linked both ways, a handler closing over its owner
        await super().run(connection, options)


def test_an_ended_call_is_collected_without_waiting_for_pythons_own_collector(library, monkeypatch):
    """A pipeline is a web of cycles that only a full collection frees, and those come seldom: ended calls kept
    their FFmpeg threads and memory until one did (threads grew by 2 a call). The app collects after each call."""
    import voiceclone.pipecat.web.app as app

    monkeypatch.setattr(app, "COLLECT_AFTER_END_S", 0.0)
    calls = CyclicCalls()
    gc.disable()  # only the app's own collection may free the call
    try:
        with make_client(library, calls) as c:
            assert c.post("/api/offer", json=browser_offer()).status_code == 200
            poll(lambda: calls.connections, tries=200)
            calls.hang_up.set()
            # generous: the collection runs on a worker thread after the call's end
            poll(lambda: calls.connections and calls.connections[0]() is None, tries=600)
            assert calls.connections and calls.connections[0]() is None, "the ended call was not collected"
    finally:
        gc.enable()


def test_a_bug_behind_an_endpoint_is_a_500_with_one_line_not_a_traceback(library):
    broken = APIRouter()

    @broken.get("/api/broken")
    async def _broken():
        raise RuntimeError("a bug")

    with make_client(library, routes=[broken]) as c:
        response = c.get("/api/broken")
    assert response.status_code == 500
    assert response.json() == {"detail": "the bot failed to answer this request (see its log)"}


# ------------------------------------------------------------------------------------------------ enrolling
def enroll_request(client, audio: bytes, name="dora", speaker="Dora", content_type="audio/wav", day=None):
    params = {"name": name, "speaker": speaker, "date": (day or date.today()).isoformat()}
    return client.post("/api/voices", params=params, content=audio, headers={"Content-Type": content_type})


def test_uploads_are_checked_like_any_untrusted_file(client):
    speech = wav_bytes(spoken(PASSAGE), 48000)
    cases = [
        (dict(audio=speech, content_type="text/plain"), 415, "audio/wav"),
        (dict(audio=b"RIFF....WAVEfmt " + b"\0" * 64), 400, "recording"),  # a WAV header over nothing
        (dict(audio=b"fLaC" + b"\0" * 100), 415, "not a WAV"),
        (dict(audio=b"RIFF" + b"\0" * (6 * 1024 * 1024)), 413, "larger than 5 MB"),
        (dict(audio=speech, name="../etc"), 400, "bad voice name"),
        (dict(audio=speech, name=""), 400, "name"),
        (dict(audio=speech, name="bob"), 409, "already exists"),
        (dict(audio=speech, speaker="<b>"), 400, "speaker's name"),
        (dict(audio=speech, day=date(2001, 1, 1)), 400, "today's"),
    ]
    for kwargs, status, words in cases:
        response = enroll_request(client, **kwargs)
        assert response.status_code == status, (kwargs.get("name"), response.text)
        assert words in response.json()["detail"], response.json()
        assert "/tmp" not in response.json()["detail"]  # never the server's temporary paths
        assert "MP3" not in response.json()["detail"]  # the page takes WAV only: no advice to send another format
    assert "dora" not in [v["name"] for v in client.get("/api/voices").json()["voices"]]


def test_the_cli_refusals_come_back_as_one_line(client):
    silence = wav_bytes(np.zeros(48000 * 5, dtype=np.float32), 48000)
    response = enroll_request(client, silence)
    assert response.status_code == 400 and "no speech" in response.json()["detail"]
    assert "recording.wav" not in response.json()["detail"]  # the user's recording, not our temporary file
    short = wav_bytes(spoken("Hello."), 48000)
    response = enroll_request(client, short)
    assert response.status_code == 400 and "s of speech" in response.json()["detail"]


def test_a_recording_without_the_consent_sentence_is_refused(client):
    response = enroll_request(client, wav_bytes(spoken(PASSAGE + " " + PASSAGE), 48000))
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "consent not recognised" in detail and "heard" in detail and "\n" not in detail


def test_a_recording_that_opens_with_the_consent_sentence_becomes_a_voice(client, library):
    sentence = client.get("/api/consent", params={"speaker": "Dora"}).json()["sentence"]
    audio = np.concatenate([spoken(sentence), np.zeros(9600, dtype=np.float32), spoken(PASSAGE)])
    response = enroll_request(client, wav_bytes(audio, 48000))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["voice"] == "dora" and body["quality"]["speech_s"] > 5
    assert body["consent"]["verified"] and body["consent"]["source"] == "browser page"
    assert body["consent"]["speaker_check"]["passed"] is True  # the voice after the sentence is the reader's
    assert "dora" in [v["name"] for v in client.get("/api/voices").json()["voices"]]
    stored = library.get("dora").record.consent
    assert stored["expected"] == sentence and stored["source"] == "browser page" and stored["time"]
    assert enroll_request(client, wav_bytes(audio, 48000)).status_code == 409  # the name is now taken


def test_start_sessions_stay_bounded_in_size_number_and_age(library, monkeypatch):
    from voiceclone.pipecat.web import app as web_app

    with make_client(library) as c:
        big = {"body": {"x": "y" * (web_app.MAX_START_BYTES + 10)}}
        assert c.post("/start", json=big).status_code == 413  # a large body is refused, not kept
        for _ in range(web_app.MAX_PENDING_SESSIONS + 20):
            assert c.post("/start", json={"body": {"voice": "bob"}}).status_code == 200
        sessions = c.app.state.sessions
        assert len(sessions) == web_app.MAX_PENDING_SESSIONS  # the oldest went first
        sessions.bind("forgotten-while-answered", "pc-1", {"voice": "bob"})  # its call exists: it comes back
        assert sessions.body("forgotten-while-answered") == {"voice": "bob"}
        sessions.call_ended("pc-1")
        monkeypatch.setattr(web_app, "SESSION_TTL_S", 0.0)
        sessions.prune()  # what the app's timer does every PRUNE_EVERY_S
        assert len(sessions) == 0


def test_a_recording_whose_sentence_another_voice_read_is_refused(client):
    """The page follows the CLI: the voice after the consent sentence must be the one that read it."""
    import shutil

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    from testkit.bot_harness import espeak_speech

    sentence = client.get("/api/consent", params={"speaker": "Erin"}).json()["sentence"]
    other = soxr.resample(espeak_speech(PASSAGE + " " + PASSAGE, "en-us+f3"), 16000, 48000).astype(np.float32)
    audio = np.concatenate([spoken(sentence), np.zeros(9600, dtype=np.float32), other])
    response = enroll_request(client, wav_bytes(audio, 48000), name="erin", speaker="Erin")
    assert response.status_code == 400, response.text
    assert "not the voice to be cloned" in response.json()["detail"]


def test_same_name_uploads_at_once_get_one_voice_and_409s_for_a_page_user(library):
    """Five uploads of one name at once: one 201, the rest 409 with a page message and no server path; a name
    in other letter case is the same name."""
    import concurrent.futures

    with make_client(library) as c:
        sentence = c.get("/api/consent", params={"speaker": "Fay"}).json()["sentence"]
        audio = wav_bytes(np.concatenate([spoken(sentence), np.zeros(9600, dtype=np.float32), spoken(PASSAGE)]), 48000)
        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            answers = list(pool.map(lambda _: enroll_request(c, audio, name="fay", speaker="Fay"), range(5)))
        codes = sorted(a.status_code for a in answers)
        assert codes == [201, 409, 409, 409, 409], [a.text for a in answers]
        for answer in answers:
            detail = answer.json().get("detail", "")
            assert "--force" not in detail and str(library.root) not in detail and "/" not in detail
        other_case = enroll_request(c, audio, name="FAY", speaker="Fay")
        assert other_case.status_code == 409 and "'fay' already exists" in other_case.json()["detail"]


def test_a_call_whose_connection_never_closes_still_ends(monkeypatch):
    """aiortc may wait forever closing a connection whose peer never came: the call ends all the same (it was
    dropped while still pending, and destroyed by the garbage collector with its clean-up never run)."""
    from voiceclone.pipecat.web import app as web_app

    monkeypatch.setattr(web_app, "DISCONNECT_TIMEOUT_S", 0.01)

    class NeverCloses:
        pc_id = "pc-stuck"

        async def disconnect(self):
            await asyncio.Event().wait()

    async def run_call(connection, options):
        return None

    async def scenario():
        calls = web_app._Calls(run_call, limit=1)
        ended = asyncio.Event()
        calls.on_end = lambda pc_id: ended.set()
        calls.start(NeverCloses(), {})
        assert len(calls._held) == 1  # held until done, whoever else forgets it
        await asyncio.wait_for(ended.wait(), 60)
        await asyncio.sleep(0)
        assert len(calls) == 0 and not calls._held

    asyncio.run(scenario())


def test_head_is_answered_like_get_without_a_body(client):
    for path in ("/", "/api/voices", "/api/config", "/static/index.html"):
        response = client.head(path)
        assert response.status_code == 200 and response.content == b"", path
        assert response.headers["content-type"] == client.get(path).headers["content-type"]
    assert client.head("/api/offer").status_code == 405  # no GET there either


def test_a_refused_request_is_a_line_in_the_bots_log(client):
    """Whoever runs the bot sees why a page was refused; a missing path (favicon.ico) only at debug level."""
    from loguru import logger

    lines: list[tuple[str, str]] = []
    sink = logger.add(lambda m: lines.append((m.record["level"].name, m.record["message"])), level="DEBUG")
    try:
        client.post("/api/offer", content=b"{}", headers={"Content-Type": "text/plain"})
        client.get("/favicon.ico")
    finally:
        logger.remove(sink)
    refusals = [(level, line) for level, line in lines if "refused" in line]
    assert refusals[0] == (
        "INFO",
        "POST /api/offer: refused, 415 send the request as JSON (Content-Type: application/json)",
    )
    assert refusals[1][0] == "DEBUG" and refusals[1][1].startswith("GET /favicon.ico: refused, 404")
