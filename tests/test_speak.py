"""`voiceclone speak`: streamed cloned speech to files and pipes, the engines, and every bad input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cli_helpers import error_line, run_cli
from fake_openai import GOOD_KEY, FakeSpeechServer

from voiceclone.cloning.cloned import ClonedVoice
from voiceclone.cloning.enrollment import enroll
from voiceclone.cloning.openvoice_conversion import OpenVoiceConversion, source_embedding
from voiceclone.errors import UserError
from voiceclone.openvoice.converter import ToneColorConverter
from voiceclone.speak.run import speak_to
from voiceclone.speak.sinks import RawSink, WavSink
from voiceclone.tts import OpenAIEngine, OpenAISettings, PiperEngine, PiperSettings, TTSError
from voiceclone.tts.sentences import split_sentences
from voiceclone.voices.store import VoiceLibrary

TEXT = "Hello there, this is a test. The second sentence is a little longer than the first one!"
QUIET = PiperSettings(noise_scale=0.0, noise_w_scale=0.0)  # deterministic base voice


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache for the module: the base voice's embedding is learned once."""
    path = tmp_path_factory.mktemp("cache")
    os.environ["VOICECLONE_CACHE_DIR"] = str(path)
    yield path
    os.environ.pop("VOICECLONE_CACHE_DIR", None)


@pytest.fixture(scope="module")
def library(tmp_path_factory, tiny_v2, recordings):
    lib = VoiceLibrary(tmp_path_factory.mktemp("voices"))
    enroll(lib, [recordings["bob"]], OpenVoiceConversion(ToneColorConverter.load(tiny_v2[0], device="cpu")), name="bob")
    return lib


@pytest.fixture
def deterministic_config(tmp_path):
    config = tmp_path / "speak.yaml"
    # The provenance mark is on by default (its own tests check it): off here, to compare with plain conversion.
    config.write_text("watermark: false\ntts:\n  tau: 0\n  piper:\n    noise_scale: 0\n    noise_w_scale: 0\n")
    return config


def cli(
    *args: str, models_dir: Path | None, cache: Path, stdin: str | None = None, env: dict | None = None, binary=False
):
    full = {"VOICECLONE_CACHE_DIR": cache, **(env or {})}
    if models_dir is not None:
        full["VOICECLONE_MODELS_DIR"] = models_dir
    return run_cli("speak", *args, env=full, stdin=stdin, binary=binary)


def expected_speech(converter, library, text: str) -> np.ndarray:
    """The reference result: each sentence synthesised whole and converted whole, then joined."""
    piper = PiperEngine(QUIET)
    source = source_embedding(piper, converter)
    target = library.get("bob").embedding("v2")
    parts = []
    for sentence in split_sentences(text):
        audio = piper.synthesize(sentence)
        padded = np.pad(audio, (0, max(-(-len(audio) // 256) * 256, 1024) - len(audio)))
        parts.append(converter.convert(padded, source, target, tau=0)[: len(audio)])
    return np.concatenate(parts)


def test_sentences():
    assert split_sentences("Hi. I'm Dr. Smith! Really? Yes…\n\nNew paragraph without end") == [
        "Hi.",
        "I'm Dr. Smith!",
        "Really?",
        "Yes…",
        "New paragraph without end",
    ]
    assert split_sentences("It costs 3.50 dollars. OK.") == ["It costs 3.50 dollars.", "OK."]
    assert split_sentences("   \n ") == []


def test_cloned_stream_equals_whole_conversion(tiny_v2, library, cache):
    converter = ToneColorConverter.load(tiny_v2[0], device="cpu")
    voice = ClonedVoice(PiperEngine(QUIET), OpenVoiceConversion(converter), library.get("bob").embedding("v2"), tau=0.0)
    streamed = np.concatenate([np.concatenate(list(voice.speak(s))) for s in split_sentences(TEXT)])
    assert np.max(np.abs(streamed - expected_speech(converter, library, TEXT))) <= 1e-4


def test_speak_writes_the_expected_wav(tmp_path, tiny_v2, models_dir, library, cache, deterministic_config):
    out = tmp_path / "out.wav"
    result = cli(
        TEXT,
        "--voice",
        "bob",
        "--voices-dir",
        str(library.root),
        "-o",
        str(out),
        "--config",
        str(deterministic_config),
        models_dir=models_dir,
        cache=cache,
    )
    assert result.returncode == 0, result.stderr
    assert "first audio" in result.stderr and "real-time factor" in result.stderr
    audio, sr = sf.read(out, dtype="float32")
    expected = expected_speech(ToneColorConverter.load(tiny_v2[0], device="cpu"), library, TEXT)
    assert sr == 22050 and len(audio) == len(expected)
    assert np.max(np.abs(audio - expected)) <= 2 / 32768
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav", "speak.yaml"]  # no partial files left


def test_standard_input_to_standard_output(tmp_path, models_dir, library, cache, deterministic_config):
    result = cli(
        "--voice",
        "bob",
        "--voices-dir",
        str(library.root),
        "-o",
        "-",
        "--config",
        str(deterministic_config),
        models_dir=models_dir,
        cache=cache,
        stdin=TEXT,
        binary=True,
    )
    assert result.returncode == 0, result.stderr
    wav = tmp_path / "ref.wav"
    assert (
        cli(
            TEXT,
            "--voice",
            "bob",
            "--voices-dir",
            str(library.root),
            "-o",
            str(wav),
            "--config",
            str(deterministic_config),
            models_dir=models_dir,
            cache=cache,
        ).returncode
        == 0
    )
    pcm = np.frombuffer(result.stdout, dtype="<i2")
    ref, _ = sf.read(wav, dtype="int16")
    assert np.array_equal(pcm, ref)


def test_other_sample_rate_and_file_input(tmp_path, models_dir, library, cache):
    text_file = tmp_path / "text.txt"
    text_file.write_text("Short and sweet.")
    out = tmp_path / "out16k.wav"
    result = cli(
        "--file",
        str(text_file),
        "--voice",
        "bob",
        "--voices-dir",
        str(library.root),
        "-o",
        str(out),
        "--sample-rate",
        "16000",
        "--verbose",
        models_dir=models_dir,
        cache=cache,
    )
    assert result.returncode == 0, result.stderr
    assert "sentence 1:" in result.stderr and "first after" in result.stderr
    info = sf.info(out)
    assert info.samplerate == 16000 and 0.5 < info.duration < 3


def test_clone_from_a_file_on_the_fly(tmp_path, models_dir, recordings, cache):
    lib = tmp_path / "empty-library"
    out = tmp_path / "fly.wav"
    result = cli(
        "On the fly.",
        "--voice",
        str(recordings["dave"]),
        "--voices-dir",
        str(lib),
        "-o",
        str(out),
        models_dir=models_dir,
        cache=cache,
    )
    assert result.returncode == 0, result.stderr
    assert out.is_file() and not lib.exists()  # nothing stored


def test_no_clone_speaks_the_base_voice(tmp_path, cache):
    out = tmp_path / "base.wav"
    result = cli("The base voice.", "--no-clone", "-o", str(out), models_dir=tmp_path / "no-models", cache=cache)
    assert result.returncode == 0, result.stderr
    assert sf.info(out).duration > 0.5


def test_openai_engine_against_a_fake_server(tmp_path, models_dir, library, cache):
    config = tmp_path / "openai.yaml"
    with FakeSpeechServer() as server:
        config.write_text(
            f"tts:\n  engine: openai\n  openai:\n    base_url: {server.base_url}\n    voice: nova\n    model: tts-1\n"
        )
        out = tmp_path / "openai.wav"
        result = cli(
            "One. Two.",
            "--voice",
            "bob",
            "--voices-dir",
            str(library.root),
            "-o",
            str(out),
            "--config",
            str(config),
            models_dir=models_dir,
            cache=cache,
            env={"OPENAI_API_KEY": GOOD_KEY},
        )
    assert result.returncode == 0, result.stderr
    bodies = [r["body"] for r in server.requests]
    assert {"input": "One.", "model": "tts-1", "voice": "nova", "response_format": "pcm"}.items() <= bodies[-2].items()
    # calibration sentences, then the two sentences; 1 s of 24 kHz audio each -> 22050 samples each
    assert sf.info(out).frames == pytest.approx(2 * 22050, abs=64)


def test_an_openai_address_that_is_no_address_is_one_line(tmp_path, cache):
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "notaurl"}
    result = cli(
        "hi", "--no-clone", "--engine", "openai", "-o", str(tmp_path / "a.wav"), models_dir=None, cache=cache, env=env
    )
    assert "OPENAI_BASE_URL 'notaurl' is not an http(s) address" in error_line(result)
    assert not (tmp_path / "a.wav").exists()


def test_openai_engine_errors(cache):
    with pytest.raises(TTSError, match="API key"):
        OpenAIEngine(OpenAISettings(base_url="http://127.0.0.1:9/v1"))
    with FakeSpeechServer() as server, pytest.raises(TTSError, match="rejected the API key"):
        OpenAIEngine(OpenAISettings(base_url=server.base_url, api_key="sk-bad")).synthesize("hi")
    with FakeSpeechServer(mode="hang") as server, pytest.raises(TTSError, match="did not answer within 1 s"):
        OpenAIEngine(OpenAISettings(base_url=server.base_url, api_key=GOOD_KEY, timeout_s=1)).synthesize("hi")
    with FakeSpeechServer(mode="error") as server, pytest.raises(TTSError, match="overloaded"):
        OpenAIEngine(OpenAISettings(base_url=server.base_url, api_key=GOOD_KEY)).synthesize("hi")
    with pytest.raises(TTSError, match="cannot reach"):
        OpenAIEngine(OpenAISettings(base_url="http://127.0.0.1:9/v1", api_key=GOOD_KEY)).synthesize("hi")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["", "--voice", "bob", "-o", "{tmp}/a.wav"], "nothing to say"),
        (["hi", "--voice", "nobody", "-o", "{tmp}/a.wav"], "no voice named 'nobody'"),
        (["hi", "--voice", "{notes}", "-o", "{tmp}/a.wav"], "not a readable audio file"),
        (["hi", "--voice", "{tmp}/missing.wav", "-o", "{tmp}/a.wav"], "voice file not found"),
        (["hi", "--voice", "bob", "-o", "{tmp}/no/such/dir/a.wav"], "folder not found"),
        (["hi", "--voice", "bob", "-o", "{tmp}"], "is a folder"),
        (["hi", "--voice", "bob", "-o", "{tmp}/a.wav", "--piper-voice", "{tmp}/none.onnx"], "Piper voice not found"),
        (["hi", "--voice", "bob", "-o", "{tmp}/a.wav", "--piper-voice", "{alice}"], "not a Piper voice (a"),
        (["hi", "--voice", "bob", "-o", "{tmp}/a.wav", "--engine", "openai"], "OPENAI_API_KEY"),
        (["hi", "--voice", "bob"], "say where the audio goes"),
        (["hi", "--voice", "bob", "-o", "{tmp}/a.txt"], "cannot write '.txt' audio"),
        (["--file", "{tmp}", "--voice", "bob", "-o", "{tmp}/a.wav"], "is a folder, not a text file"),
        (["--file", "{alice}", "--voice", "bob", "-o", "{tmp}/a.wav"], "not UTF-8 text"),
        (["hi", "--voice", "{alice}", "-o", "{alice}"], "is also an input of this command"),
        (["...", "--voice", "bob", "-o", "{tmp}/a.wav"], "nothing was spoken: the text has no words"),
        (["hi", "-o", "{tmp}/a.wav"], "say whose voice"),
        (["hi", "--voice", "bob", "-o", "{tmp}/a.wav", "--tau", "-1"], "--tau"),
        (["hi", "--voice", "bob", "-o", "{tmp}/a.wav", "--device", "tpu"], "unknown device"),
        (["hi", "--voice", "bob", "-o", "{tmp}/a.wav/"], "names a folder; give a file name such as"),
        (["hi", "--voice", "bob", "-o", "{lib}/bob/speech.flac"], "is inside the voice library"),
        (["hi", "--voice", "bob", "-o", "{tmp}/a.mp3", "--sample-rate", "12345"], "MP3 at 12345 Hz (MPEG-1/2/2.5 only"),
    ],
)
def test_bad_input_is_one_line(tmp_path, models_dir, library, recordings, cache, args, needle):
    fields = dict(tmp=tmp_path, notes=recordings["notes"], alice=recordings["alice"], lib=library.root)
    args = [a.format(**fields) for a in args]
    before = {p: p.read_bytes() for p in library.root.rglob("*") if p.is_file()}
    result = cli(*args, "--voices-dir", str(library.root), models_dir=models_dir, cache=cache)
    assert needle in error_line(result)
    assert not (tmp_path / "a.wav").exists() and not (tmp_path / "a.txt").exists()
    assert sf.info(recordings["alice"]).duration > 1  # the recording is still a recording
    assert not any(p.name.endswith(".part") for p in tmp_path.iterdir())
    assert {p: p.read_bytes() for p in library.root.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    "suffix,fmt", [(".flac", "FLAC"), (".ogg", "OGG"), (".mp3", "MP3"), (".WAV", "WAV"), ("", "WAV")]
)
def test_the_file_name_chooses_the_format(tmp_path, speech, suffix, fmt):
    """`-o speech.mp3` is an MP3, not a WAV under another name; the same samples in every format."""
    from voiceclone.speak.sinks import file_sink

    chunks = [speech[:7000], speech[7000:20000], speech[20000:]]
    out = tmp_path / f"speech{suffix}"
    speak_to(["a"], lambda sentence: iter(chunks), 22050, [file_sink(out, 22050)], 22050)
    info = sf.info(out)
    assert (info.format, info.samplerate, info.channels) == (fmt, 22050, 1)
    audio, _ = sf.read(out, dtype="float32")
    assert len(audio) == len(speech)  # the encoders' padding is not part of the speech
    if fmt in ("FLAC", "WAV"):
        assert np.max(np.abs(audio - speech)) <= 2 / 32768
    else:  # lossy, but the same speech: the waveforms correlate closely
        assert np.corrcoef(audio, speech)[0, 1] > 0.9
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_an_output_through_a_link_replaces_the_file_it_points_at_and_keeps_the_link(tmp_path, speech):
    from voiceclone.speak.sinks import file_sink

    real = tmp_path / "takes" / "real.wav"
    real.parent.mkdir()
    real.write_bytes(b"an old take")
    link = tmp_path / "latest.wav"
    link.symlink_to(real)
    speak_to(["a"], lambda sentence: iter([speech]), 22050, [file_sink(link, 22050)], 22050)
    assert link.is_symlink() and link.resolve() == real
    assert sf.info(real).format == "WAV"
    assert sorted(p.name for p in real.parent.iterdir()) == ["real.wav"]  # no temporary file left


def test_an_output_that_is_a_device_or_a_pipe_is_refused_not_replaced(tmp_path, cache):
    from voiceclone.speak.sinks import file_sink

    pipe = tmp_path / "pipe.wav"
    os.mkfifo(pipe)
    for target in (pipe, Path(os.devnull)):
        with pytest.raises(UserError, match=r"is not a plain file .*`speak -o -` streams audio to standard output"):
            file_sink(target, 22050)
    assert pipe.is_fifo() and Path(os.devnull).is_char_device()
    result = cli("hi", "--no-clone", "-o", str(pipe), models_dir=None, cache=cache)
    assert result.returncode != 0 and "is not a plain file (a device or a pipe)" in error_line(result)
    assert pipe.is_fifo()


def test_an_output_whose_folder_is_a_file_says_so(tmp_path):
    from voiceclone.speak.sinks import file_sink

    (tmp_path / "take.wav").write_bytes(b"RIFF")
    with pytest.raises(UserError, match="take.wav: is a file, not a folder"):
        file_sink(tmp_path / "take.wav" / "x.wav", 22050)


def test_no_converter_names_the_download_command(tmp_path, library, cache):
    result = cli(
        "hi",
        "--voice",
        "bob",
        "--voices-dir",
        str(library.root),
        "-o",
        str(tmp_path / "a.wav"),
        "--converter",
        "openvoice",  # `auto` would fall back to the built-in matcher
        models_dir=tmp_path / "nothing",
        cache=cache,
    )
    assert "voiceclone models download" in error_line(result)
    assert not (tmp_path / "a.wav").exists()


def test_a_failure_mid_way_keeps_the_old_file(tmp_path, models_dir, library, cache):
    out = tmp_path / "keep.wav"
    out.write_bytes(b"precious")
    config = tmp_path / "c.yaml"
    with FakeSpeechServer() as server:
        config.write_text(f"tts:\n  engine: openai\n  openai:\n    base_url: {server.base_url}\n")
        result = cli(
            "hi",
            "--voice",
            "bob",
            "--voices-dir",
            str(library.root),
            "-o",
            str(out),
            "--config",
            str(config),
            models_dir=models_dir,
            cache=cache,
            env={"OPENAI_API_KEY": "sk-wrong"},
        )
    assert "rejected the API key" in error_line(result)
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "keep.wav"]


def test_speak_to_stats_and_sinks(tmp_path):
    chunks = {"a": [np.zeros(2205, np.float32)] * 3, "b": [np.ones(2205, np.float32) * 0.5]}
    now = [0.0]

    def source(sentence):
        for chunk in chunks[sentence]:
            now[0] += 0.05  # each chunk takes 50 ms to make
            yield chunk

    out, raw, lines = tmp_path / "s.wav", tmp_path / "s.raw", []
    with open(raw, "wb") as fh:
        stats = speak_to(
            ["a", "b"],
            source,
            22050,
            [WavSink(out, 22050), RawSink(fh)],
            22050,
            clock=lambda: now[0],
            report=lines.append,
        )
    assert stats.sentences == 2 and stats.audio_s == pytest.approx(0.4)
    assert stats.first_audio_s == pytest.approx(0.05) and stats.elapsed_s == pytest.approx(0.2)
    assert stats.real_time_factor == pytest.approx(0.5)
    assert sf.info(out).frames == 8820 and raw.stat().st_size == 8820 * 2
    assert len(lines) == 2 and "0.30 s of audio in 3 chunks" in lines[0]
