"""`LocalLLM`: chat replies from a GGUF model through llama.cpp, streamed piece by piece, stoppable at once.

One model per process for each (file, context size, threads, parallel), shared by every call. A `llama_cpp.Llama`
decodes one sequence at a time, so a model holds up to `parallel` of them ("slots"), each with its own context
(KV cache) on the same memory-mapped weights: callers asking at once are answered at once, not one whole reply
after another (a second caller used to wait 0.8-1.2 s). Two slots are opened at load, more when every open one
is busy, and the cores are divided among the replies running (llama.cpp's threads spin: more threads than cores
slows everyone down). A caller gets back the slot that holds its conversation, so only its new words are
evaluated. A reply waiting for a slot can still be cancelled.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from voiceclone.cpu import FIRST_AUDIO
from voiceclone.errors import UserError
from voiceclone.llm.models import BUILTIN, check_gguf, locate_model
from voiceclone.llm.transcode import fast_copy
from voiceclone.once import once
from voiceclone.tts.sentences import SENTENCE_ENDS, early_head

MIN_CONTEXT = 256  # below this a system prompt and one short exchange hardly fit
MESSAGE_OVERHEAD = 8  # tokens a chat template adds around one message, when the model has no template to count with
LOCK_POLL_S = 0.05  # how often a reply waiting for its turn looks whether it was cancelled
# An answer's first tokens (the quick start's first 5 words and a little more): while any reply is making them,
# replies past theirs wait between tokens. The caller hears the first words sooner; the others' text is already
# ahead of their speech (a voice says ~3 tokens a second; the model makes 50-150).
HEAD_TOKENS = 12
# The most a reply waits for other answers' heads and first audio, in all. Its own first words play for 0.7-1 s,
# and the rest of its sentence must be written (~0.15 s) and synthesised (~0.25 s) within that: a reply that gave
# way to every head of three callers (0.5 s at a time, token after token) left a silence of up to 2.1 s inside
# its answer.
GIVE_WAY_BUDGET_S = 0.3
_clock = time.monotonic  # what giving way is timed by (a test moves it by hand)
# Reading ahead evaluates this many tokens at a time (~20 ms on one core), so that a reply wanted meanwhile, or the
# caller's pause (Whisper's turn), waits at most that long for the model.
READ_AHEAD_BATCH = 4
_SENTENCE_END = re.compile(f"[{SENTENCE_ENDS}]\\s")


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
class _Slot:
    """One llama.cpp context on the model: it decodes one reply at a time."""

    llama: Any
    busy: bool = False
    owner: int | None = None  # the caller whose conversation its KV cache holds
    threads: int = 0  # what llama.cpp was last told to use
    tokens: int = 0  # of the reply it is making
    waiting: bool = False  # past its head, letting another reply make its own
    reading: bool = False  # reading its caller's words ahead of their turn (`LocalLLM.read_ahead`)


class _Model:
    """A loaded model: its slots, handed out one reply at a time, and what every reply on it shares."""

    def __init__(self, path: str, n_ctx: int, threads: int, parallel: int):
        self.path, self.n_ctx, self.threads, self.parallel = path, n_ctx, threads, parallel
        first = _open(path, n_ctx, threads)
        self.llama = first  # tokenizing and the chat template (read-only: any thread, any time)
        self.formatter = _formatter(first, _llama_cpp())  # the GGUF's template, to count tokens exactly; None: estimate
        self._slots = [_Slot(first, threads=threads)]
        self._opening = 0  # slots being opened now
        self._changed = threading.Condition()
        self.preamble: list[int] | None = None  # the system prompt's tokens, evaluated ahead in idle contexts

    def acquire(self, owner: int | None, cancel: threading.Event) -> _Slot | None:
        """A free slot for `owner`'s reply (the one holding its conversation if free), or None once cancelled."""
        with self._changed:
            while not cancel.is_set():
                if owner is not None and any(s.reading and s.owner == owner for s in self._slots):
                    self._changed.wait(LOCK_POLL_S)  # its own context, reading ahead: back within a batch
                    continue
                free = [slot for slot in self._slots if not slot.busy]
                if free:
                    slot = next((s for s in free if owner is not None and s.owner == owner), None)
                    slot = slot or next((s for s in free if s.owner is None), free[0])
                    slot.busy, slot.owner, slot.tokens = True, owner, 0
                    return slot
                if not self._opening and len(self._slots) < self.parallel:  # (one being opened: wait for it)
                    self._opening += 1
                    break
                self._changed.wait(LOCK_POLL_S)
            else:
                return None
        slot = self._open_slot(busy=True, owner=owner)  # outside the lock: the other replies keep going meanwhile
        return slot if slot is not None else self.acquire(owner, cancel)

    def is_idle(self) -> bool:
        return not self.busy_besides(None)

    def try_acquire(self, owner: int) -> _Slot | None:
        """`owner`'s own slot (or an unused one) at once if nothing else is running on the model; else None.

        For work ahead of a turn (`LocalLLM.read_ahead`): it never waits, never takes another caller's conversation
        and never takes cores from a reply being made."""
        with self._changed:
            if self.busy_besides(None):
                return None
            slot = next((s for s in self._slots if s.owner == owner), None)
            slot = slot or next((s for s in self._slots if s.owner is None), None)
            if slot is not None:
                slot.busy, slot.reading, slot.owner, slot.tokens = True, True, owner, 0
            return slot

    def forget(self, owner: int) -> None:
        """`owner`'s conversation is over: its context may go to anyone (reading ahead takes only unowned ones)."""
        with self._changed:
            for slot in self._slots:
                if slot.owner == owner:
                    slot.owner = None

    def busy_besides(self, slot: _Slot | None) -> bool:
        """Whether a slot other than `slot` is making a reply or reading ahead (None: any slot)."""
        with self._changed:  # (re-entrant: also called with it held)
            return any(s.busy for s in self._slots if s is not slot)

    def _open_slot(self, busy: bool, owner: int | None) -> _Slot | None:
        """Open one more context (its opening already counted in `_opening`); None when there is no room for it."""
        slot = _Slot(None, busy=busy, owner=owner)
        try:
            slot.llama = _open(self.path, self.n_ctx, self.threads)
            if not busy:  # a spare: its first decode sets up llama.cpp's buffers, not on a caller's turn
                if self.preamble:
                    slot.llama.eval(self.preamble)  # and the system prompt is in its KV cache already
                else:
                    slot.llama.eval(slot.llama.tokenize(b"Hello", add_bos=True))
                    slot.llama.reset()
        except Exception as exc:  # no memory for another context: the slots there are will have to do
            logger.warning(f"local LLM: could not open another context ({exc}); answering with {len(self._slots)}")
            with self._changed:
                self._opening -= 1
                self.parallel = len(self._slots)
            return None
        with self._changed:
            self._opening -= 1
            self._slots.append(slot)
            self._changed.notify_all()
        logger.debug(f"local LLM: {len(self._slots)} contexts open")
        return slot

    def open_spare(self) -> None:
        """Open and warm a second context now, at load (~0.3 s): the first two callers asking at once both start
        at once. (Not on a background thread: one still inside llama.cpp when the process exits on an early
        error, a taken port say, killed the process before its error line was written.)"""
        with self._changed:
            if len(self._slots) + self._opening >= min(2, self.parallel):
                return
            self._opening += 1
        self._open_slot(busy=False, owner=None)

    def prime(self, tokens: list[int]) -> None:
        """Evaluate `tokens` (a conversation's opening: the system prompt) now in every idle context, and in the
        spares opened later: a caller's first question then evaluates only its own tokens (llama-cpp-python
        reuses the longest common prefix of what a context holds). Once per preamble."""
        with self._changed:
            if tokens == self.preamble:
                return
            self.preamble = tokens
            idle = [slot for slot in self._slots if not slot.busy and slot.owner is None]
            for slot in idle:
                slot.busy = True
        try:
            for slot in idle:
                slot.llama.reset()
                slot.llama.eval(tokens)
        finally:
            with self._changed:
                for slot in idle:
                    slot.busy = False
                self._changed.notify_all()

    def release(self, slot: _Slot) -> None:
        with self._changed:
            slot.busy = slot.reading = False
            self._changed.notify_all()

    def next_token(self, slot: _Slot, cancel: threading.Event, head_written: bool, may_wait_s: float) -> float:
        """Between two tokens of `slot`'s reply: wait while another reply makes its head, or, once this reply has
        written its own first words (`head_written`), while an answer's first audio is being made
        (`voiceclone.cpu.FirstAudio`), at most `may_wait_s` in all; then share the cores. Returns the seconds
        waited.

        A reply still writing its first words never waits for another answer's audio: with three callers at
        once, the second and third replies used to stop one token short of their heads (the token that shows the
        last head word is whole) for the whole of the first answer's first audio, ~0.25 s each.
        """
        slot.tokens += 1
        start = _clock()
        deadline = start + max(0.0, may_wait_s)
        with self._changed:
            if slot.tokens == HEAD_TOKENS:
                self._changed.notify_all()  # replies waiting for this head go on
            while slot.tokens >= HEAD_TOKENS and not cancel.is_set() and self._heads_other_than(slot):
                left = deadline - _clock()
                if left <= 0:
                    break
                slot.waiting = True
                self._changed.wait(min(LOCK_POLL_S, left))
            slot.waiting = False
        left = deadline - _clock()
        if head_written and left > 0 and FIRST_AUDIO.pending:  # an answer's first words are being voiced
            slot.waiting = True
            FIRST_AUDIO.wait(cancel, left)
            slot.waiting = False
        waited = _clock() - start
        self.share_cores(slot)
        return waited

    def _heads_other_than(self, slot: _Slot) -> bool:
        return any(s.busy and s is not slot and s.tokens < HEAD_TOKENS for s in self._slots)

    def share_cores(self, slot: _Slot) -> None:
        """Give `slot` its share of the threads (called on its own thread, between tokens)."""
        with self._changed:
            running = sum(s.busy and not s.waiting for s in self._slots)
        threads = max(1, self.threads // max(1, running))
        if threads != slot.threads:
            _llama_cpp().llama_set_n_threads(slot.llama._ctx.ctx, decode_threads(threads), prompt_threads(threads))
            slot.threads = threads


def decode_threads(threads: int) -> int:
    """Of a reply's `threads`, how many make its tokens one by one: half, at least one.

    In a voice bot the LLM goes on writing while the TTS voices its first words, and both want the cores. With every
    core decoding, llama.cpp's spinning threads and Piper, the converter and the VAD took turns on 2 cores: the
    first words of an answer were voiced later. On 2 cores (`benchmarks/calls.py --llm local --calls 1 --turns 8`,
    alternating runs, timed from the end of the recording as the caller then did) one decoding thread gave medians
    of 0.76 and 0.80 s at the caller against 0.85 and 0.89 s with two. Alone, one thread decodes 39 tokens/s instead
    of 59: still ten times faster than speech.
    """
    return max(1, threads // 2)


def prompt_threads(threads: int) -> int:
    """Of a reply's `threads`, how many read its prompt: all but one, at least one.

    A call's audio keeps a core partly busy all the time, even in silence: the bot's event loop (WebRTC in and out,
    Pipecat's frames, the VAD) takes about a quarter of a core per call (`top -H` on 2 cores, one idle call: 21-27 %
    for the loop, 4 % for the VAD's thread). llama.cpp's threads wait for each other at every step of the graph by
    spinning, so one of them pushed off its core by the loop holds the others up: on 2 cores, reading the prompt with
    both threads took as long in a call as reading it with one (`benchmarks/calls.py`'s caller, the bot's log: first
    token 135-150 ms in a call; 63-92 ms with two threads and 107-147 ms with one, alone). Two alternating runs of 8
    turns each: first token median 152 ms (one thread) against 163 ms (two), at the caller 0.80 against 0.80 s,
    means 0.78 against 0.82 s. The core left over keeps the call's audio going; with many cores it costs little.
    """
    return max(1, threads - 1)


def _open(path: str, n_ctx: int, threads: int):
    """`path` in llama.cpp (a context on memory-mapped weights); a load failure becomes one line."""
    llama_cpp = _llama_cpp()
    try:
        return llama_cpp.Llama(
            model_path=path,
            n_ctx=n_ctx,
            n_threads=decode_threads(threads),
            n_threads_batch=prompt_threads(threads),
            verbose=False,
        )
    except Exception as exc:  # llama.cpp reports a damaged or unsupported file as a ValueError, with no detail
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"llm.model {path!r}: llama.cpp cannot load it ({reason}); the file may be damaged or of an "
            "architecture this llama.cpp does not know"
        ) from None


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


_LOADS: dict[tuple[str, int, int, int], once[_Model]] = {}
_LOADS_LOCK = threading.Lock()


def _shared(path: Path, n_ctx: int, threads: int, parallel: int) -> _Model:
    """The process's one model for these settings; two threads asking at once wait for one load."""
    key = (str(path.resolve()), n_ctx, threads, parallel)
    with _LOADS_LOCK:
        load = _LOADS.setdefault(key, once(functools.partial(_Model, *key)))
    model = load()
    model.open_spare()
    return model


class Reply(Iterator[str]):
    """The text of one reply, piece by piece as it is generated; then how many tokens went in and came out."""

    def __init__(self, pieces: Iterator[str]):
        self._pieces = pieces
        self.prompt_tokens = 0  # the prompt as sent, after trimming
        self.completion_tokens = 0  # pieces yielded (a piece is one token, or a few for a split UTF-8 character)
        self.waited_s = 0.0  # how long it waited for a free context on the model

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        """Stop generating and let the next reply have the model."""
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()


class LocalLLM:
    """A GGUF chat model on the CPU: streamed replies that fit its context, `parallel` at once, cancellable."""

    def __init__(
        self,
        model: str | Path = "builtin",
        context_size: int = 2048,
        threads: int | None = None,
        parallel: int = 1,
    ):
        """Check and load the model (or reuse this process's copy).

        Args:
            model: `builtin`, a path to a `.gguf` file, or `hf://owner/repo/file.gguf` (see `models.resolve_model`).
            context_size: Tokens of conversation the model sees (prompt and reply); at most what it was trained on.
            threads: CPU threads; None: every core. Replies running at once share them.
            parallel: Replies generated at once (each in its own context, opened when first needed).

        Raises:
            UserError: a model that cannot be found, read or loaded, or a context size it cannot take.
        """
        path = model if isinstance(model, Path) else locate_model(str(model))
        assert path is not None  # a hub file is downloaded when missing
        info = check_gguf(path, str(model))
        if str(model).strip() == BUILTIN:
            path = fast_copy(path)  # the same weights as Q8_0: llama.cpp reads a prompt a third faster
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
        self._model = _shared(path, context_size, self.threads, max(1, parallel))

    @property
    def context_size(self) -> int:
        """Tokens of prompt and reply the model takes at once."""
        return self._model.n_ctx

    def is_idle(self) -> bool:
        """Whether no reply (and no reading ahead) is running on the model now."""
        return self._model.is_idle()

    def forget(self, owner: int) -> None:
        """`owner`'s conversation has ended (a call hung up): its context is free for another caller's."""
        self._model.forget(owner)

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

    def prime(self, system_prompt: str) -> None:
        """Put the system prompt in the contexts' KV caches now, so that the first question of a call does not
        wait for it (the built-in model's 42 tokens: a first token of 208 ms on 2 cores, 58 ms primed)."""
        opening = [{"role": "system", "content": system_prompt}, {"role": "user", "content": ""}]
        tokens = self._template_tokens(opening)
        if tokens is None:  # no template: the plain text is the prompt's likeliest start
            tokens = self._model.llama.tokenize(system_prompt.encode("utf-8"), add_bos=True)
        self._model.prime(tokens)

    def _template_tokens(self, messages: list[dict]) -> list[int] | None:
        """The tokens of the prompt these messages make through the model's chat template; None without one."""
        llama, formatter = self._model.llama, self._model.formatter
        if formatter is None:
            return None
        try:
            result = formatter(messages=messages)
        except Exception:  # a template that refuses this order of roles
            return None
        return llama.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)

    def count_tokens(self, messages: list[dict]) -> int:
        """Tokens of the prompt these messages make, through the model's chat template (else an estimate)."""
        tokens = self._template_tokens(messages)
        if tokens is not None:
            return len(tokens)
        llama = self._model.llama
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
        whole = self.count_tokens(system + turns)
        if whole <= budget:  # the usual case: everything fits (one pass through the template, on the turn's path)
            return system + turns, whole
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

    def read_ahead(self, messages: list[dict], max_tokens: int, owner: int, stop: threading.Event | None = None) -> int:
        """Evaluate the prompt `messages` make into `owner`'s context now, before its reply is asked for.

        While a caller is still speaking, their words so far (`messages` ending with them as the user's message)
        can be read into the KV cache: when the turn ends, the reply's prompt differs only from the last words on,
        and only that part is evaluated (llama-cpp-python reuses the longest common prefix). On 2 cores a
        question's ~20 tokens take ~85 ms on the thread that reads prompts, on the turn's path otherwise.

        Blocking (run it on a thread). It does nothing when another reply is being made (the cores are its) or
        `owner`'s context is busy, and stops between small batches once `stop` is set (the reply is wanted).

        Returns:
            The tokens evaluated.
        """
        stop = stop or threading.Event()
        model = self._model
        slot = model.try_acquire(owner)
        if slot is None:
            return 0
        evaluated = 0
        try:
            fitted, _ = self.fit(messages, max_tokens)
            tokens = self._template_tokens(fitted)
            llama = slot.llama
            if tokens is None or stop.is_set():
                return 0
            # At least the last token is evaluated: the logits left behind must be this prompt's.
            same = min(llama.longest_token_prefix(llama._input_ids, tokens), len(tokens) - 1)  # as generate() does
            llama.n_tokens = same  # what differs from here on is dropped from the KV cache by the next eval
            llama._requires_eval = True  # (if stopped before any eval, a reply must not sample stale logits)
            model.share_cores(slot)
            for start in range(same, len(tokens), READ_AHEAD_BATCH):
                if stop.is_set() or model.busy_besides(slot):  # its reply is wanted, or another call's is
                    break
                batch = tokens[start : start + READ_AHEAD_BATCH]
                llama.eval(batch)
                evaluated += len(batch)
        finally:
            model.release(slot)
        return evaluated

    def stream(
        self,
        messages: list[dict],
        temperature: float = 0.7,
        max_tokens: int = 128,
        cancel: threading.Event | None = None,
        owner: int | None = None,
    ) -> Reply:
        """The reply to a conversation, as text pieces while they are generated (run it on a thread).

        Args:
            messages: OpenAI-style messages, the system prompt first; trimmed to the context (`fit`).
            temperature: Sampling temperature (0: always the likeliest token).
            max_tokens: The longest reply, in tokens.
            cancel: Set it to stop: generation ends before the next token (or before starting, while waiting).
            owner: Who asks (one number per conversation): its next reply goes to the same context, whose KV cache
                already holds the conversation so far.

        Returns:
            A `Reply`: iterate it for the text.
        """
        reply = Reply(iter(()))
        reply._pieces = self._generate(reply, messages, temperature, max_tokens, cancel or threading.Event(), owner)
        return reply

    def _generate(
        self,
        reply: Reply,
        messages: list[dict],
        temperature: float,
        max_tokens: int,
        cancel: threading.Event,
        owner: int | None,
    ) -> Iterator[str]:
        model = self._model
        start = time.perf_counter()
        slot = model.acquire(owner, cancel)
        if slot is None:
            return
        reply.waited_s = time.perf_counter() - start
        try:
            if cancel.is_set():
                return
            fitted, reply.prompt_tokens = self.fit(messages, max_tokens)
            model.share_cores(slot)
            chunks = slot.llama.create_chat_completion(
                messages=fitted, temperature=temperature, max_tokens=max_tokens, stream=True
            )
            written = ""  # the reply so far, until its first words are written
            gave_way = 0.0  # seconds this reply has waited for others
            try:
                for chunk in chunks:
                    if cancel.is_set():
                        break
                    text = chunk["choices"][0]["delta"].get("content")
                    if text:
                        reply.completion_tokens += 1
                        yield text
                        if written is not None:
                            written = None if head_written(written + text) else written + text
                    # another reply's first words first; then the cores shared anew
                    gave_way += model.next_token(
                        slot,
                        cancel,
                        head_written=written is None or slot.tokens >= HEAD_TOKENS,
                        may_wait_s=GIVE_WAY_BUDGET_S - gave_way,
                    )
            finally:
                chunks.close()  # stops llama.cpp before its next token
        finally:
            model.release(slot)


def head_written(text: str) -> bool:
    """Whether a reply's text so far holds the words the TTS says first: its first clause or words
    (`voiceclone.tts.sentences.early_head`, the rule the bot's TTS cuts them by) or a whole sentence."""
    text = text.lstrip()
    return early_head(text) is not None or _SENTENCE_END.search(text) is not None


@functools.cache
def shared_llm(model: str, context_size: int, threads: int | None, parallel: int = 1) -> LocalLLM:
    """The process's `LocalLLM` for these settings: each call's service uses it without checking the file again."""
    return LocalLLM(model, context_size, threads, parallel)


def load_configured(cfg) -> LocalLLM:
    """The model a `LocalLLMConfig` names, loaded, with its system prompt and replies checked to fit the context.

    Raises:
        UserError: the model, or the settings with it, cannot work (one line).
    """
    llm = shared_llm(cfg.model, cfg.context_size, cfg.threads, cfg.parallel)
    llm.check_fits(cfg.system_prompt, cfg.max_tokens)
    llm.prime(cfg.system_prompt)
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
