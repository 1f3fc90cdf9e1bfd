"""How long Ctrl-C takes: the offline WebRTC bot stopped idle, and with calls from aiortc callers connected.

    python benchmarks/stop.py [--calls 0 4] [--runs 3] [--port 8771]

Enrolls a demo voice in a temporary library, starts `voiceclone run-bot --config offline --transport webrtc`,
connects N callers (aiortc peers that answer but send nothing), waits 6 s, sends SIGINT and times the exit.
Prints the median and worst over runs for each N, with the machine and its load. The goal (issue 19): at most
1 s idle and 2 s with calls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testkit.process import machine  # noqa: E402


def _prepare(folder: Path) -> Path:
    sample = folder / "demo.wav"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_demo_sample.py"), str(sample)], check=True, capture_output=True
    )
    library = folder / "voices"
    subprocess.run(
        [sys.executable, "-m", "voiceclone", "enroll", str(sample), "--name", "demo", "--voices-dir", str(library)],
        check=True,
        capture_output=True,
    )
    return library


async def _caller(port: int):
    from aiortc import RTCPeerConnection, RTCSessionDescription

    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="sendrecv")
    pc.createDataChannel("chat")
    await pc.setLocalDescription(await pc.createOffer())
    body = json.dumps({"sdp": pc.localDescription.sdp, "type": "offer"}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/offer", data=body, headers={"Content-Type": "application/json"}
    )
    answer = json.loads(await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=60).read()))
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
    return pc


async def _once(library: Path, port: int, calls: int) -> float:
    env = dict(os.environ, COLUMNS="200")
    command = [
        sys.executable,
        "-m",
        "voiceclone",
        "run-bot",
        "--config",
        "offline",
        "--transport",
        "webrtc",
        "--port",
        str(port),
        "--voices-dir",
        str(library),
        "--voice",
        "demo",
    ]
    bot = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    try:
        return await _stop_with_calls(bot, port, calls)
    finally:
        if bot.poll() is None:
            bot.kill()


async def _stop_with_calls(bot: subprocess.Popen, port: int, calls: int) -> float:
    seen = []
    while True:  # the URL line: the bot is listening
        line = await asyncio.to_thread(bot.stderr.readline)
        seen.append(line)
        if not line:
            raise RuntimeError("the bot exited before it was ready: " + "".join(seen)[-800:])
        if "Open http" in line:
            break
    for _ in range(300):  # the URL is shown just before the server binds: wait until it answers
        try:
            await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/api/config", timeout=5))
            break
        except OSError:
            await asyncio.sleep(0.1)
    peers = [await _caller(port) for _ in range(calls)]
    await asyncio.sleep(6.0)
    start = time.perf_counter()
    bot.send_signal(signal.SIGINT)
    await asyncio.to_thread(bot.wait)  # the callers' loop keeps running, as a browser's would
    took = time.perf_counter() - start
    for pc in peers:
        await pc.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[0, 4])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=8771)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as folder:
        library = _prepare(Path(folder))
        for calls in args.calls:
            times = [asyncio.run(_once(library, args.port + 10 * calls + i, calls)) for i in range(args.runs)]
            print(f"Ctrl-C with {calls} call(s): median {statistics.median(times):.2f} s, worst {max(times):.2f} s")


if __name__ == "__main__":
    main()
