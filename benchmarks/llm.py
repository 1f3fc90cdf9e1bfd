"""Local LLM speed: load time, time to first token, tokens/s, memory, and what a second call waits.

    python benchmarks/llm.py [MODEL.gguf ...] [--threads N] [--context-size 2048] [--max-tokens 64] [--server]

For the built-in model (SmolLM2-135M-Instruct) and each GGUF file given: the load time, the median time to the
first token over short one-question conversations, the decode speed, the process's resident memory with the model
loaded, the first tokens of a short conversation whose history grows turn by turn (measured as the bot sees them:
TTFB of `LocalLLMService`), and the first token of a call that asks while another call's reply is generated.

`--server` also runs llama.cpp's OpenAI-compatible server (`python -m llama_cpp.server`, which needs
`pip install 'llama-cpp-python[server]'`) on 127.0.0.1 and measures the same conversation through Pipecat's
`OpenAILLMService`: the other way a bot could use a local model.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.process import machine, rss_mib  # noqa: E402
from voiceclone.config.sections import LOCAL_SYSTEM_PROMPT  # noqa: E402
from voiceclone.llm.engine import LocalLLM  # noqa: E402
from voiceclone.llm.models import resolve_model  # noqa: E402

QUESTIONS = [
    "What is the capital of France?",
    "Can you recommend a good book?",
    "Why is the sky blue?",
    "What should I cook for dinner tonight?",
    "Tell me a joke.",
]
# A short spoken conversation: each turn is asked with the turns before it (answers scripted, so both ways see
# the same prompts).
CONVERSATION = [
    ("Hi there! How are you today?", "I'm doing well, thank you. How can I help?"),
    ("I'm planning a trip to Italy next month.", "That sounds wonderful. Which cities will you visit?"),
    ("Rome and Florence. What should I see in Rome?", "See the Colosseum and the Vatican, and walk the old town."),
    ("How many days would you spend there?", "Three or four days gives you time for the main sights."),
    ("Thanks! Any tip for the train to Florence?", ""),
]


def one_question(llm: LocalLLM, question: str, max_tokens: int) -> tuple[float, float, int]:
    """(seconds to the first piece, seconds in all, pieces) for a one-question conversation."""
    messages = [{"role": "system", "content": LOCAL_SYSTEM_PROMPT}, {"role": "user", "content": question}]
    start = time.perf_counter()
    first = None
    reply = llm.stream(messages, temperature=0.0, max_tokens=max_tokens)
    for _ in reply:
        if first is None:
            first = time.perf_counter() - start
    return first or float("nan"), time.perf_counter() - start, reply.completion_tokens


def concurrent(llm: LocalLLM, max_tokens: int) -> tuple[float, float, float]:
    """Two calls ask at the same moment: (first call's first token, second call's first token, second's wait)."""
    firsts: dict[int, float] = {}
    waits: dict[int, float] = {}
    barrier = threading.Barrier(2)

    def ask(i: int) -> None:
        messages = [{"role": "system", "content": LOCAL_SYSTEM_PROMPT}, {"role": "user", "content": QUESTIONS[i]}]
        barrier.wait()
        start = time.perf_counter()
        reply = llm.stream(messages, temperature=0.0, max_tokens=max_tokens, owner=i)
        for _ in reply:
            firsts.setdefault(i, time.perf_counter() - start)
        waits[i] = reply.waited_s

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    second = max(firsts, key=firsts.get)
    return firsts[1 - second], firsts[second], waits[second]


def conversation_contexts(turns: list[tuple[str, str]]) -> list:
    """The conversation's turns as Pipecat contexts, each with the turns before it."""
    from pipecat.frames.frames import LLMContextFrame
    from pipecat.processors.aggregators.llm_context import LLMContext

    frames, history = [], []
    for question, answer in turns:
        history.append({"role": "user", "content": question})
        frames.append(LLMContextFrame(context=LLMContext(messages=list(history))))
        history.append({"role": "assistant", "content": answer})
    return frames


async def pipecat_ttfb(service, turns: list[tuple[str, str]] = CONVERSATION) -> list[float]:
    """The TTFB a service reports for each turn of a conversation, as a bot would see it."""
    from pipecat.metrics.metrics import TTFBMetricsData
    from pipecat.pipeline.worker import PipelineParams
    from pipecat.tests.utils import run_test

    params = PipelineParams(enable_metrics=True)
    frames = conversation_contexts(turns)
    down, _ = await run_test(service, frames_to_send=frames, pipeline_params=params, start_timeout=60)
    values = [d.value for f in down for d in getattr(f, "data", []) if isinstance(d, TTFBMetricsData)]
    return [v for v in values if v > 0]


def local_service(llm: LocalLLM, max_tokens: int):
    from voiceclone.pipecat.local_llm import LocalLLMService

    return LocalLLMService(llm, system_prompt=LOCAL_SYSTEM_PROMPT, temperature=0.0, max_tokens=max_tokens)


def server_ttfb(path: Path, threads: int, context_size: int, max_tokens: int) -> tuple[float, list[float]]:
    """(server start-up seconds, TTFB per turn through `OpenAILLMService`) for llama.cpp's server on 127.0.0.1."""
    from pipecat.services.openai.llm import OpenAILLMService

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--n_ctx", str(context_size), "--n_threads", str(threads), "--verbose", "False"]
    start = time.perf_counter()
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit(f"the server did not start: {server.stderr.read().strip().splitlines()[-1:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        started = time.perf_counter() - start

        def service():  # one per pipeline run: a service (and its HTTP client) belongs to one event loop
            return OpenAILLMService(
                api_key="none",
                base_url=f"http://127.0.0.1:{port}/v1",
                settings=OpenAILLMService.Settings(
                    model=path.stem, system_instruction=LOCAL_SYSTEM_PROMPT, temperature=0.0, max_tokens=max_tokens
                ),
            )

        asyncio.run(pipecat_ttfb(service(), [("Hello!", "")]))  # warm-up, as the local model had its warm-up
        return started, asyncio.run(pipecat_ttfb(service()))
    finally:
        server.terminate()
        server.wait(timeout=30)


def ms(values: list[float]) -> str:
    return " ".join(f"{v * 1000:.0f}" for v in values) + " ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="GGUF files to measure besides the built-in model")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: every core)")
    parser.add_argument("--context-size", type=int, default=2048)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--parallel", type=int, default=4, help="llm.parallel: replies generated at once")
    parser.add_argument("--server", action="store_true", help="also measure llama.cpp's server via OpenAILLMService")
    args = parser.parse_args()
    from loguru import logger

    logger.remove()  # Pipecat's per-frame debug lines would bury the figures
    threads = args.threads or os.cpu_count() or 1
    print(f"machine: {machine()}")
    print(
        f"settings: {threads} threads, context {args.context_size}, replies up to {args.max_tokens} tokens, "
        f"{args.parallel} at once"
    )
    for spec in ["builtin", *args.models]:
        before = rss_mib()
        start = time.perf_counter()
        llm = LocalLLM(spec, args.context_size, threads, args.parallel)
        load = time.perf_counter() - start
        loaded = rss_mib()
        one_question(llm, "Hello!", 8)  # warm-up: the first decode sets up llama.cpp's buffers
        runs = [one_question(llm, q, args.max_tokens) for q in QUESTIONS]
        ttft = statistics.median(r[0] for r in runs)
        rates = [(n - 1) / (total - first) for first, total, n in runs if n > 1 and total > first]
        used = rss_mib()  # before Pipecat is imported below: the model's own memory
        first, second, waited = concurrent(llm, args.max_tokens)
        turns = asyncio.run(pipecat_ttfb(local_service(llm, args.max_tokens)))
        print(f"\n{llm.name} ({resolve_model(spec)})")
        print(f"  load:                     {load * 1000:7.0f} ms")
        print(
            f"  resident memory:          {loaded:7.0f} MiB loaded ({loaded - before:+.0f}), {used:.0f} after answering"
        )
        print(f"  first token:              {ttft * 1000:7.0f} ms median of {len(runs)} one-question conversations")
        print(f"  decode:                   {statistics.median(rates):7.1f} tokens/s median")
        print(f"  conversation, per turn:   {ms(turns)} (LocalLLMService TTFB; history grows)")
        print(f"  two calls at once:        first tokens {first * 1000:.0f} ms and {second * 1000:.0f} ms")
        print(f"{'':28}(llm.parallel {args.parallel}: waited {waited * 1000:.0f} ms for a context)")
        if args.server:
            started, server_turns = server_ttfb(llm.path, threads, args.context_size, args.max_tokens)
            print(f"  llama.cpp server:         started in {started * 1000:.0f} ms; per turn {ms(server_turns)}")
            print("                            (OpenAILLMService TTFB over HTTP on 127.0.0.1)")
    print(f"\nload average at the end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
