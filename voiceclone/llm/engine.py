"""`LocalLLM`: chat replies from a GGUF model through llama.cpp, streamed piece by piece, stoppable at once.

One `llama_cpp.Llama` per process for each (file, context size, threads), shared by every call: a model's weights
and its context (the KV cache) are loaded once. A Llama object decodes one sequence at a time, so replies take
turns on it (a lock); a reply waiting its turn can still be cancelled.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from voiceclone.errors import UserError
from voiceclone.llm.models import check_gguf, locate_model
from voiceclone.once import once

MIN_CONTEXT = 256  # below this a system prompt and one short exchange hardly fit
MESSAGE_OVERHEAD = 8  # tokens a chat template adds around one message, when the model has no template to count with
LOCK_POLL_S = 0.05  # how often a reply waiting for its turn looks whether it was cancelled


def _llama_cpp():
    """The llama_cpp module (deferred: a large native library that only a local LLM needs)."""
    try:
        import llama_cpp
    except ImportError:
        raise UserError(
            "the local LLM needs llama-cpp-python: run make install (or pip install -e '.[offline]')"
        ) from None
    return llama_cpp


@dataclass
class _Model:
    """A loaded model and what every reply on it shares."""

    llama: Any
    n_ctx: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    formatter: Any = None  # the GGUF's chat template, to count a prompt's tokens exactly; None: estimate


def _load(path: str, n_ctx: int, threads: int) -> _Model:
    """Load `path` into llama.cpp; a load failure becomes one line."""
    llama_cpp = _llama_cpp()
    try:
        llama = llama_cpp.Llama(model_path=path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False)
    except Exception as exc:  # llama.cpp reports a damaged or unsupported file as a ValueError, with no detail
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"llm.model {path!r}: llama.cpp cannot load it ({reason}); the file may be damaged or of an "
            "architecture this llama.cpp does not know"
        ) from None
    return _Model(llama, n_ctx, formatter=_formatter(llama, llama_cpp))


def _formatter(llama, llama_cpp):
    """The model's own chat template as a formatter (as `create_chat_completion` uses it), or None."""
    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        return None
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    def text(token: int) -> str:
        return llama.detokenize([token], special=True).decode("utf-8", errors="ignore") if token >= 0 else ""

    try:
        return Jinja2ChatFormatter(template, eos_token=text(llama.token_eos()), bos_token=text(llama.token_bos()))
    except Exception:  # a template jinja2 cannot compile: count by estimate instead
        return None


_LOADS: dict[tuple[str, int, int], once[_Model]] = {}
_LOADS_LOCK = threading.Lock()


def _shared(path: Path, n_ctx: int, threads: int) -> _Model:
    """The process's one model for (file, context size, threads); two threads asking at once wait for one load."""
    key = (str(path.resolve()), n_ctx, threads)
    with _LOADS_LOCK:
        load = _LOADS.setdefault(key, once(functools.partial(_load, *key)))
    return load()


class Reply(Iterator[str]):
    """The text of one reply, piece by piece as it is generated; then how many tokens went in and came out."""

    def __init__(self, pieces: Iterator[str]):
        self._pieces = pieces
        self.prompt_tokens = 0  # the prompt as sent, after trimming
        self.completion_tokens = 0  # pieces yielded (a piece is one token, or a few for a split UTF-8 character)
        self.waited_s = 0.0  # how long it waited for another reply on the same model to finish

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        """Stop generating and let the next reply have the model."""
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()


class LocalLLM:
    """A GGUF chat model on the CPU: streamed replies that fit its context, one at a time, cancellable."""

    def __init__(self, model: str | Path = "builtin", context_size: int = 2048, threads: int | None = None):
        """Check and load the model (or reuse this process's copy).

        Args:
            model: `builtin`, a path to a `.gguf` file, or `hf://owner/repo/file.gguf` (see `models.resolve_model`).
            context_size: Tokens of conversation the model sees (prompt and reply); at most what it was trained on.
            threads: CPU threads; None: every core.

        Raises:
            UserError: a model that cannot be found, read or loaded, or a context size it cannot take.
        """
        path = model if isinstance(model, Path) else locate_model(str(model))
        assert path is not None  # a hub file is downloaded when missing
        info = check_gguf(path, str(model))
        if context_size < MIN_CONTEXT:
            raise UserError(f"llm.context_size {context_size}: too small for a conversation (at least {MIN_CONTEXT})")
        if info.context_length is not None and context_size > info.context_length:
            raise UserError(
                f"llm.context_size {context_size}: more than the model was trained for ({info.context_length} "
                "tokens); it would answer with nonsense past that"
            )
        self.path = path
        self.name = path.stem  # SmolLM2-135M-Instruct.Q4_1: what the file says, quantisation included
        self.threads = threads or os.cpu_count() or 1
        self._model = _shared(path, context_size, self.threads)

    @property
    def context_size(self) -> int:
        """Tokens of prompt and reply the model takes at once."""
        return self._model.n_ctx

    def check_fits(self, system_prompt: str, max_tokens: int) -> None:
        """A system prompt and a reply of `max_tokens` leave room in the context for the conversation.

        Raises:
            UserError: they do not (a config to fix before any call).
        """
        used = self.count_tokens([{"role": "system", "content": system_prompt}, {"role": "user", "content": ""}])
        room = self.context_size - used - max_tokens
        if room < MIN_CONTEXT // 2:
            raise UserError(
                f"llm.max_tokens {max_tokens} and the system prompt ({used} tokens) leave {max(room, 0)} tokens of "
                f"llm.context_size {self.context_size} for the conversation: lower max_tokens or raise context_size"
            )

    def count_tokens(self, messages: list[dict]) -> int:
        """Tokens of the prompt these messages make, through the model's chat template (else an estimate)."""
        llama, formatter = self._model.llama, self._model.formatter
        if formatter is not None:
            try:
                result = formatter(messages=messages)
                return len(
                    llama.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)
                )
            except Exception:  # a template that refuses this order of roles: the estimate below
                pass
        body = sum(len(llama.tokenize(m["content"].encode("utf-8"), add_bos=False)) for m in messages)
        return body + MESSAGE_OVERHEAD * (len(messages) + 1)

    def fit(self, messages: list[dict], max_tokens: int) -> tuple[list[dict], int]:
        """The messages to send: the system prompt always, then as many of the latest turns as fit with the reply.

        Args:
            messages: OpenAI-style messages (`role`, `content`); tool calls and their results are left out.
            max_tokens: Room kept for the reply.

        Returns:
            (messages, the prompt's tokens).
        """
        system, turns = _split(plain_messages(messages))
        budget = self.context_size - max_tokens
        # The fewest dropped turns that fit (the count shrinks as turns are dropped): a search, not a loop over all.
        low, high = 0, len(turns)
        while low < high:
            mid = (low + high) // 2
            if self.count_tokens(system + turns[mid:]) <= budget:
                high = mid
            else:
                low = mid + 1
        start = low
        while start < len(turns) - 1 and turns[start]["role"] != "user":  # start on a question, not an answer
            start += 1
        kept = turns[start:]
        if start == len(turns) and turns:  # even the last message alone is too long: keep its end
            if self.count_tokens(system + [{**turns[-1], "content": ""}]) > budget:
                logger.warning("local LLM: the system prompt alone fills the context; answering without it")
                system = []
            kept = [self._shorten(system, turns[-1], budget)]
        if start:
            logger.debug(f"local LLM: {start} old message(s) left out to fit {self.context_size} tokens")
        fitted = system + kept
        return fitted, self.count_tokens(fitted)

    def _shorten(self, system: list[dict], message: dict, budget: int) -> dict:
        """`message` cut to its last words so that it fits after the system prompt (a long ramble's end matters)."""
        llama = self._model.llama
        room = budget - self.count_tokens(system + [{**message, "content": ""}])
        tokens = llama.tokenize(message["content"].encode("utf-8"), add_bos=False)
        tail = tokens[len(tokens) - max(room, 0) :] if room > 0 else []
        return {**message, "content": llama.detokenize(tail).decode("utf-8", errors="ignore").strip()}

    def stream(
        self,
        messages: list[dict],
        temperature: float = 0.7,
        max_tokens: int = 128,
        cancel: threading.Event | None = None,
    ) -> Reply:
        """The reply to a conversation, as text pieces while they are generated (run it on a thread).

        Args:
            messages: OpenAI-style messages, the system prompt first; trimmed to the context (`fit`).
            temperature: Sampling temperature (0: always the likeliest token).
            max_tokens: The longest reply, in tokens.
            cancel: Set it to stop: generation ends before the next token (or before starting, while waiting).

        Returns:
            A `Reply`: iterate it for the text.
        """
        reply = Reply(iter(()))
        reply._pieces = self._generate(reply, messages, temperature, max_tokens, cancel or threading.Event())
        return reply

    def _generate(
        self, reply: Reply, messages: list[dict], temperature: float, max_tokens: int, cancel: threading.Event
    ) -> Iterator[str]:
        model = self._model
        start = time.perf_counter()
        while not model.lock.acquire(timeout=LOCK_POLL_S):  # one reply at a time on one model
            if cancel.is_set():
                return
        reply.waited_s = time.perf_counter() - start
        try:
            if cancel.is_set():
                return
            fitted, reply.prompt_tokens = self.fit(messages, max_tokens)
            chunks = model.llama.create_chat_completion(
                messages=fitted, temperature=temperature, max_tokens=max_tokens, stream=True
            )
            try:
                for chunk in chunks:
                    if cancel.is_set():
                        break
                    text = chunk["choices"][0]["delta"].get("content")
                    if text:
                        reply.completion_tokens += 1
                        yield text
            finally:
                chunks.close()  # stops llama.cpp before its next token
        finally:
            model.lock.release()


@functools.cache
def shared_llm(model: str, context_size: int, threads: int | None) -> LocalLLM:
    """The process's `LocalLLM` for these settings: each call's service uses it without checking the file again."""
    return LocalLLM(model, context_size, threads)


def load_configured(cfg) -> LocalLLM:
    """The model a `LocalLLMConfig` names, loaded, with its system prompt and replies checked to fit the context.

    Raises:
        UserError: the model, or the settings with it, cannot work (one line).
    """
    llm = shared_llm(cfg.model, cfg.context_size, cfg.threads)
    llm.check_fits(cfg.system_prompt, cfg.max_tokens)
    return llm


def plain_messages(messages: list) -> list[dict]:
    """Messages a chat template takes: system, user and assistant text; tool calls and results left out.

    A local model has no tools: the tool-call turns a failed-over cloud LLM left in the context would only
    confuse it. A message's content in parts (OpenAI's list form) becomes its text.
    """
    out = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = {"developer": "system"}.get(message.get("role"), message.get("role"))
        if role not in ("system", "user", "assistant"):
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        if isinstance(content, str) and content.strip():
            out.append({"role": role, "content": content.strip()})
    return out


def _split(messages: list[dict]) -> tuple[list[dict], list[dict]]:
    """(the system prompt as one message, or none; the turns after it)."""
    head = 0
    while head < len(messages) and messages[head]["role"] == "system":
        head += 1
    system = [{"role": "system", "content": "\n\n".join(m["content"] for m in messages[:head])}] if head else []
    return system, messages[head:]
