"""Voice to voice heard in a real browser: headless Chromium calls the offline bot from its own page.

    python benchmarks/browser.py [--turns 6] [--converter matcher|openvoice] [--llm local|echo]

Starts `voiceclone run-bot` as `benchmarks/calls.py` does, then opens the bot's page in the system's Chromium
(Debian's `chromium`, driven by Playwright) with a fake microphone playing a recorded question every 11 s. The
figures are the page's own (what a person sees under "Turns"): from the last moment the microphone heard speech
to the first sound of the answer in the page, both read from the audio itself every 10 ms. Prints the median and
worst over the turns, beside the bot's own log lines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from calls import RATE, caller_audio, start_bot, stop_bot  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


def write_microphone(path: Path) -> None:
    """One question and its gap, which Chromium loops: a question every `LEAD_S + question + GAP_S` seconds."""
    pcm, _ = caller_audio(1)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())


async def run(args) -> None:
    from playwright.async_api import async_playwright

    if not CHROMIUM.exists():
        raise SystemExit("no /usr/bin/chromium: install Debian's chromium (make install does it as root)")
    with tempfile.TemporaryDirectory(prefix="voiceclone-browser-") as tmp:
        mic = Path(tmp) / "question.wav"
        write_microphone(mic)
        url, proc = start_bot(
            Path(tmp),
            args.converter,
            1,
            args.llm,
            verbose=args.bot_log is not None,
            read_ahead=not args.no_read_ahead,
        )
        try:
            print(
                f"offline bot ({args.converter} converter, {args.llm} LLM) in headless Chromium, {args.turns} turns; "
                f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start",
                flush=True,
            )
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=str(CHROMIUM),
                    headless=True,
                    args=[*FLAGS, f"--use-file-for-fake-audio-capture={mic}"],
                )
                page = await browser.new_page()
                await page.goto(url)
                await page.wait_for_function("!document.querySelector('#connect').disabled", timeout=60_000)
                await page.click("#connect")
                await page.wait_for_function(
                    f"window.voiceclone.turns.length >= {args.turns}", timeout=(args.turns * 15 + 60) * 1000
                )
                turns = await page.evaluate("window.voiceclone.turns")
                await browser.close()
            print(
                f"heard in the page: median {statistics.median(turns):.2f} s, worst {max(turns):.2f} s over "
                f"{len(turns)} turns ({', '.join(f'{t:.2f}' for t in turns)})"
            )
            print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        finally:
            stop_bot(proc, Path(tmp), args.bot_log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--converter", choices=["openvoice", "matcher"], default="matcher")
    parser.add_argument("--llm", choices=["local", "echo"], default="local", help="the built-in local LLM, or the echo")
    parser.add_argument("--no-read-ahead", action="store_true", help="read the question only at the turn's end")
    parser.add_argument("--bot-log", help="keep the bot's debug log (run-bot --verbose) in this file")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
