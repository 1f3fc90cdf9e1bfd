"""Concurrent calls against one offline bot server: voice-to-voice latency as the number of callers grows.

    python benchmarks/calls.py [--calls 1 2 4] [--turns 3] [--converter openvoice|matcher] [--llm local|echo]

Starts `voiceclone run-bot` (configs/offline.yaml: Silero VAD, Whisper tiny.en, the local LLM (or the echo), Piper,
a real-size OpenVoice converter with random weights or the matcher) and makes N calls at once over real WebRTC on
localhost. Each caller is an aiortc peer that speaks a recorded question in real time, `--turns` times, all callers
at the same moment (the worst case: every answer is computed at once; `--stagger` spreads the callers' questions
evenly over a turn instead, as calls that overlap without speaking in step do); the latency of a turn is from the end of
the question's speech, in real time (its last sample louder than SPEECH_LEVEL, the level the browser page counts as
speaking; not the end of the recording, whose ~0.15 s of trailing silence is no speech), to the first sound of the
answer arriving. A turn left unanswered, or whose question ends while the bot is still answering an earlier one,
fails its N. Prints the median and worst latency for each N, the longest silence inside an answer (from its first
sound to its last: where an answer stutters because its audio came late, against one call's natural pauses), then
the largest N whose median stays under `--target` seconds (searching past the Ns given).
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import numpy as np
import soxr
import yaml
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from av import AudioFrame

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testkit.process import cpu_seconds, memory  # noqa: E402
from voiceclone.audio.pcm import to_int16  # noqa: E402
from voiceclone.pipecat.latency import SPEECH_LEVEL  # noqa: E402  (where the bot's own figure starts too)

QUESTION = "Could you tell me what the weather will be like this weekend?"
RATE = 48000
FRAME = 960  # 20 ms at 48 kHz
LEAD_S, GAP_S = 2.0, 8.0  # quiet before the first question, and after each one (the answer fits in it)
SOUND = 0.02  # a received frame louder than this is the bot speaking
OVERLAP_S = 1.0  # the bot sounding this close before a question ends is still answering an earlier one
STUTTER_S = 0.8  # a silence inside an answer longer than this is no pause a speaker makes: the audio came late


@dataclass
class Turn:
    """One question's answer as the caller heard it."""

    latency: float | None  # from the question's end to the answer's first sound; None: not answered in time
    longest_silence: float | None = None  # the longest quiet stretch between the answer's first and last sound


class Microphone(MediaStreamTrack):
    """An audio track playing the caller's audio in real time; notes when each question ends."""

    kind = "audio"

    def __init__(self, pcm: np.ndarray, speech_ends: list[int]):
        super().__init__()
        self._pcm, self._ends = pcm, speech_ends
        self._sent = 0
        self._start: float | None = None
        self.ended_at: list[float] = []  # wall-clock time each question's speech ended
        self.finished = asyncio.Event()

    async def recv(self) -> AudioFrame:
        if self._start is None:
            self._start = time.time()
        else:
            await asyncio.sleep(max(0.0, self._start + self._sent / RATE - time.time()))
        sent_at = time.time()
        chunk = self._pcm[self._sent : self._sent + FRAME]
        if len(chunk) < FRAME:
            self.finished.set()
            chunk = np.zeros(FRAME, np.int16)
        frame = AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RATE, self._sent, fractions.Fraction(1, RATE)
        first = self._sent
        self._sent += FRAME
        while len(self.ended_at) < len(self._ends) and self._sent >= self._ends[len(self.ended_at)]:
            # the moment the speech's last sample is said, in real time (the frame starts now)
            self.ended_at.append(sent_at + (self._ends[len(self.ended_at)] - first) / RATE)
        return frame


async def listen(track, sounds: list[float]) -> None:
    """Note the arrival time of every loud frame of the bot's audio."""
    while True:
        frame = await track.recv()
        if np.abs(frame.to_ndarray()).max() / 32768.0 > SOUND:
            sounds.append(time.time())


async def one_call(url: str, pcm: np.ndarray, speech_ends: list[int]) -> list[Turn]:
    """A caller asking its questions: each turn's answer as heard."""
    pc = RTCPeerConnection()
    mic = Microphone(pcm, speech_ends)
    pc.addTrack(mic)
    pc.createDataChannel("chat")
    sounds: list[float] = []
    tasks = []
    pc.on("track", lambda track: tasks.append(asyncio.ensure_future(listen(track, sounds))))
    await pc.setLocalDescription(await pc.createOffer())
    offer = {"sdp": pc.localDescription.sdp, "type": "offer"}
    async with aiohttp.ClientSession() as http, http.post(f"{url}/api/offer", json=offer) as response:
        if response.status != 200:
            raise SystemExit(f"the bot refused a call: {response.status} {await response.text()}")
        answer = await response.json()
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
    await mic.finished.wait()
    for task in tasks:
        task.cancel()
    await pc.close()
    return [Turn(turn_latency(end, sounds), longest_silence(end, sounds)) for end in mic.ended_at]


def turn_latency(end: float, sounds: list[float]) -> float | None:
    """From the question's end to the first sound after it; None when nothing came before the next question, or
    when the bot was still sounding as the question ended (an answer to an earlier turn, late: it cannot keep up).
    """
    if any(end - OVERLAP_S < t <= end for t in sounds):
        return None
    after = [t for t in sounds if end < t < end + GAP_S]
    return after[0] - end if after else None


def longest_silence(end: float, sounds: list[float]) -> float | None:
    """The longest stretch without a loud frame between the first and the last loud frame of the answer to the
    question that ended at `end` (natural pauses between words and sentences included); None without an answer."""
    heard = [t for t in sounds if end < t < end + GAP_S]
    if len(heard) < 2:
        return None
    return max(0.0, float(np.max(np.diff(heard))) - FRAME / RATE)


def caller_audio(turns: int) -> tuple[np.ndarray, list[int]]:
    """The question read by Piper at 48 kHz, `turns` times: 16-bit samples and where each question's speech ends
    (after its last sample above SPEECH_LEVEL; Piper's trailing silence follows)."""
    from voiceclone.tts import PiperEngine, PiperSettings

    engine = PiperEngine(PiperSettings(length_scale=1.1, noise_scale=0.0, noise_w_scale=0.0))
    question = soxr.resample(engine.synthesize(QUESTION), engine.sample_rate, RATE)
    question = to_int16(0.8 * question)
    speech_end = int(np.flatnonzero(np.abs(question) > SPEECH_LEVEL * 32768)[-1]) + 1
    gap = np.zeros(int(GAP_S * RATE), np.int16)
    pieces, ends, at = [np.zeros(int(LEAD_S * RATE), np.int16)], [], int(LEAD_S * RATE)
    for _ in range(turns):
        pieces += [question, gap]
        ends.append(at + speech_end)
        at += len(question) + len(gap)
    return np.concatenate(pieces), ends


async def measure(url: str, calls: int, pcm: np.ndarray, ends: list[int], stagger: bool = False) -> list[Turn]:
    """`calls` callers at once; every turn. `stagger`: caller i starts its questions i / calls of a turn's cycle
    (question and gap) later, so the questions of different callers end at different moments."""
    await until_idle(url)
    cycle = (ends[1] - ends[0]) if len(ends) > 1 else len(pcm) - ends[0]
    offsets = [i * cycle // calls if stagger else 0 for i in range(calls)]
    results = await asyncio.gather(
        *(one_call(url, np.concatenate([np.zeros(o, np.int16), pcm]), [e + o for e in ends]) for o in offsets)
    )
    return [turn for result in results for turn in result]


async def until_idle(url: str, timeout_s: float = 120.0) -> None:
    """Wait for the previous round's calls to be gone from the server."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{url}/api/config", timeout=10) as response:
            if json.load(response)["calls"] == 0:
                return
        await asyncio.sleep(0.5)
    raise SystemExit("calls from the previous round never ended")


def start_bot(
    tmp: Path,
    converter: str,
    max_sessions: int,
    llm: str,
    parallel: int | None = None,
    speculate: bool = True,
    verbose: bool = False,
    read_ahead: bool = True,
) -> tuple[str, subprocess.Popen]:
    """A voice, a models folder with a real-size random converter, and the offline bot serving them."""
    import soundfile as sf

    from testkit.converters import write_random_converter
    from testkit.speech import speech_sample

    write_random_converter(tmp / "models" / "openvoice-v2")
    sf.write(tmp / "voice.wav", speech_sample(12.0), 22050)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECLONE_")}
    env.update(
        VOICECLONE_MODELS_DIR=str(tmp / "models"),
        VOICECLONE_VOICES_DIR=str(tmp / "voices"),
        VOICECLONE_CACHE_DIR=str(tmp / "cache"),
    )
    cli = [sys.executable, "-m", "voiceclone"]
    enroll = [*cli, "enroll", str(tmp / "voice.wav"), "--name", "bench", "--converter", converter]
    subprocess.run(enroll, env=env, check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = yaml.safe_load((ROOT / "configs" / "offline.yaml").read_text())
    config["transport"].update(port=port, max_sessions=max_sessions)
    del config["pipeline"]["opening_line"]  # no greeting
    if llm == "echo":
        config["llm"] = {"engine": "echo", "prefix": "You said: "}
    elif parallel is not None:
        config["llm"]["parallel"] = parallel
    config["pipeline"]["speculate"] = speculate
    config["pipeline"]["read_ahead"] = read_ahead
    (tmp / "bot.yaml").write_text(yaml.safe_dump(config))
    bot = [*cli, "run-bot", "--config", str(tmp / "bot.yaml"), "--voice", "bench", "--converter", converter]
    bot += ["--verbose"] if verbose else []
    with open(tmp / "bot.log", "w") as log:
        proc = subprocess.Popen(bot, env=env, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the bot exited: {(tmp / 'bot.log').read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return f"http://127.0.0.1:{port}", proc
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the bot did not start listening within 180 s")


def stop_bot(proc: subprocess.Popen, tmp: Path, keep_log: str | None = None) -> None:
    """Ctrl-C the bot, then print what it measured itself (from the last sound of the speech as it reached the bot
    to its audio leaving the transport), to read beside the outside figures: the difference is the way in and the
    path to the caller's ear."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    if keep_log:
        shutil.copyfile(tmp / "bot.log", keep_log)
    own = [line.strip() for line in (tmp / "bot.log").read_text().splitlines() if "voice to voice" in line]
    if own:
        print("the bot's own log:", *own, sep="\n  ")


def report(calls: int, turns: list[Turn], target: float) -> float:
    """One line for N calls; returns the median (inf when no turn was answered)."""
    latencies = [turn.latency for turn in turns]
    heard = [x for x in latencies if x is not None]
    missed = len(latencies) - len(heard)
    if not heard:
        print(f"N={calls}: no answer heard in {len(latencies)} turns")
        return float("inf")
    median = statistics.median(heard)
    flag = "" if median < target else f"  (over {target:.1f} s)"
    note = f", {missed} turn(s) unanswered or answered too late" if missed else ""
    print(f"N={calls}: median {median:.2f} s, worst {max(heard):.2f} s over {len(heard)} turns{note}{flag}", flush=True)
    silences = [turn.longest_silence for turn in turns if turn.longest_silence is not None]
    if silences:
        print(
            f"      longest silence inside an answer: median {statistics.median(silences):.2f} s, "
            f"worst {max(silences):.2f} s; over {STUTTER_S:g} s in {sum(x > STUTTER_S for x in silences)} of "
            f"{len(silences)} answers",
            flush=True,
        )
    return median if not missed else float("inf")


async def run(args) -> None:
    pcm, ends = caller_audio(args.turns)
    with tempfile.TemporaryDirectory(prefix="voiceclone-calls-") as tmp:
        url, proc = start_bot(
            Path(tmp),
            args.converter,
            max(args.max_calls, *args.calls),
            args.llm,
            args.llm_parallel,
            speculate=not args.no_speculate,
            verbose=args.bot_log is not None,
            read_ahead=not args.no_read_ahead,
        )
        try:
            parallel = f", llm.parallel {args.llm_parallel}" if args.llm_parallel else ""
            print(
                f"offline bot ({args.converter} converter, {args.llm} LLM{parallel}), {args.turns} turns per call, "
                f"{'callers staggered over each turn' if args.stagger else 'all callers speaking at once'}; "
                f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start; "
                f"the bot's memory: {memory(proc.pid)}",
                flush=True,
            )
            medians = {}
            for n in sorted(set(args.calls)):
                used, began = cpu_seconds(proc.pid), time.monotonic()
                medians[n] = report(n, await measure(url, n, pcm, ends, args.stagger), args.target)
                used, took = cpu_seconds(proc.pid) - used, time.monotonic() - began
                print(
                    f"      the bot's CPU: {used / (n * args.turns):.2f} s a turn; "
                    f"{used / took:.2f} cores busy on average over the round",
                    flush=True,
                )
            if 1 in medians and medians[1] != float("inf"):
                within = [n for n, m in medians.items() if m <= 1.3 * medians[1]]
                ratios = ", ".join(f"N={n}: {m / medians[1]:.2f}x" for n, m in sorted(medians.items()))
                print(f"medians against one call: {ratios}; largest N measured within 1.3x: {max(within)}")
            if not args.no_search:
                best = await search(url, pcm, ends, medians, args)
                print(f"largest N whose median stays under {args.target:.1f} s: {best if best else 'none'}")
            print(f"load average at the end: {os.getloadavg()[0]:.1f}; the bot's memory: {memory(proc.pid)}")
        finally:
            stop_bot(proc, Path(tmp), args.bot_log)


async def search(url: str, pcm, ends, medians: dict[int, float], args) -> int:
    """The largest N under the target: doubling past the largest N measured while it passes (up to
    `--max-calls`), then halving the interval between the largest passing and the smallest failing N."""
    while True:
        low = max((n for n, m in medians.items() if m < args.target), default=0)
        high = min((n for n, m in medians.items() if m >= args.target and n > low), default=None)
        if high is None:
            nxt = min(low * 2, args.max_calls)
            if nxt <= low:
                return low
        elif high - low <= 1:
            return low
        else:
            nxt = (low + high) // 2
        medians[nxt] = report(nxt, await measure(url, nxt, pcm, ends, args.stagger), args.target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--target", type=float, default=1.5, help="the median latency to stay under, seconds")
    parser.add_argument("--max-calls", type=int, default=8, help="search no further than this many calls")
    parser.add_argument("--converter", choices=["openvoice", "matcher"], default="openvoice")
    parser.add_argument("--llm", choices=["local", "echo"], default="local", help="the built-in local LLM, or the echo")
    parser.add_argument("--llm-parallel", type=int, help="llm.parallel: replies generated at once (default: config's)")
    parser.add_argument("--no-search", action="store_true", help="measure only the Ns given")
    parser.add_argument(
        "--stagger",
        action="store_true",
        help="callers' questions spread evenly over a turn's cycle, not all at the same moment (the calls overlap, "
        "their turns do not coincide)",
    )
    parser.add_argument("--no-speculate", action="store_true", help="start each answer at the turn's end, not ahead")
    parser.add_argument(
        "--no-read-ahead", action="store_true", help="the LLM reads the question only at the turn's end"
    )
    parser.add_argument("--bot-log", help="keep the bot's debug log (run-bot --verbose) in this file")
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
