"""The converter against an independent implementation, tiny random V1/V2 checkpoints, real speech."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from checkpoints import REAL_V2, random_reference, save_converter, tiny_config

from voiceclone.openvoice.checkpoint import load_into
from voiceclone.openvoice.config import CheckpointConfig
from voiceclone.openvoice.converter import FIRST_CHUNK_FRAMES, ToneColorConverter, chunk_spans
from voiceclone.openvoice.network import ConverterNetwork


def close(a, b, atol=1e-5, rtol=1e-5) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))


@pytest.fixture(params=["tiny_v2", "tiny_v1"])
def pair(request):
    folder, ref = request.getfixturevalue(request.param)
    return ToneColorConverter.load(folder, device="cpu"), ref


def embeddings(seed: int, gin: int = 16):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, gin, 1, generator=g), torch.randn(1, gin, 1, generator=g)


def test_load_reports_version_rate_and_device(tiny_v1, tiny_v2):
    v2 = ToneColorConverter.load(tiny_v2[0], device="cpu")
    v1 = ToneColorConverter.load(tiny_v1[0], device="cpu")
    assert (v2.version, v1.version) == ("v2", "v1")
    assert v2.sampling_rate == v1.sampling_rate == 22050
    assert v2.device == torch.device("cpu")
    assert v2.config.zero_g and not v1.config.zero_g


def test_spectrogram_matches_reference(pair, speech):
    conv, ref = pair
    spec = conv.spectrogram(speech)
    assert spec.shape == (1, 513, len(speech) // 256)
    assert close(spec, ref.spectrogram(speech))


def test_extract_se_matches_reference_and_averages_clips(pair, speech):
    conv, ref = pair
    clips = [speech, speech[: len(speech) // 2]]
    se = conv.extract_se(clips)
    assert se.shape == (1, 16, 1)
    assert close(se, ref.extract_se(clips))
    single = [conv.extract_se([c]) for c in clips]
    assert close(se, (single[0] + single[1]) / 2, atol=1e-6)


def test_extract_se_accepts_a_single_array(pair, speech):
    conv, _ = pair
    assert torch.equal(conv.extract_se(speech), conv.extract_se([speech]))


def test_embedding_is_nearly_gain_invariant(pair, speech):
    conv, _ = pair
    noise = np.random.default_rng(0).standard_normal(len(speech)).astype(np.float32) * 0.1
    base = conv.extract_se([speech])
    quieter = torch.linalg.vector_norm(conv.extract_se([speech * 0.5]) - base)
    other = torch.linalg.vector_norm(conv.extract_se([noise]) - base)
    # The per-frame layer norm removes gain; only the spectrogram's 1e-6 floor (silences) remains sensitive.
    assert quieter < 0.1 * torch.linalg.vector_norm(base)
    assert quieter < 0.25 * other


def test_convert_matches_reference_at_tau_zero(pair, speech):
    conv, ref = pair
    src, tgt = embeddings(0)
    out = conv.convert(speech, src, tgt, tau=0.0)
    assert out.dtype == np.float32
    assert len(out) == (len(speech) // 256) * 256
    assert close(out, ref.convert(speech, src, tgt))


def test_convert_with_noise_matches_reference_given_the_same_draw(pair, speech):
    conv, ref = pair
    src, tgt = embeddings(1)
    frames = len(speech) // 256
    eps = torch.randn(1, 8, frames, generator=torch.Generator().manual_seed(7))
    out = conv.convert(speech, src, tgt, tau=0.3, generator=torch.Generator().manual_seed(7))
    assert close(out, ref.convert(speech, src, tgt, tau=0.3, eps=eps))


def test_tau_zero_is_deterministic_and_generator_reproducible(pair, speech):
    conv, _ = pair
    src, tgt = embeddings(2)
    assert np.array_equal(conv.convert(speech, src, tgt, tau=0), conv.convert(speech, src, tgt, tau=0))
    a = conv.convert(speech, src, tgt, tau=0.5, generator=torch.Generator().manual_seed(3))
    b = conv.convert(speech, src, tgt, tau=0.5, generator=torch.Generator().manual_seed(3))
    c = conv.convert(speech, src, tgt, tau=0.5, generator=torch.Generator().manual_seed(4))
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_embeddings_accept_numpy_and_flat_shapes(pair, speech):
    conv, _ = pair
    src, tgt = embeddings(3)
    expected = conv.convert(speech[:8000], src, tgt, tau=0)
    got = conv.convert(speech[:8000], src.numpy().ravel(), tgt.reshape(1, 16), tau=0)
    assert np.array_equal(expected, got)


@pytest.mark.parametrize("first,steady", [(16, 128), (1, 1), (3, 7), (5, 32), (1000, 1000)])
def test_stream_equals_whole_conversion(pair, speech, first, steady):
    conv, _ = pair
    src, tgt = embeddings(4)
    if steady < 16:  # a chunk or two of frames a step: a second of speech is dozens of steps, and quick
        speech = speech[:22050]
    whole = conv.convert(speech, src, tgt, tau=0)
    chunks = list(conv.convert_stream(speech, src, tgt, tau=0, chunk_frames=steady, first_chunk_frames=first))
    assert all(len(c) % 256 == 0 and len(c) > 0 for c in chunks)
    assert np.max(np.abs(np.concatenate(chunks) - whole)) <= 1e-4


def test_stream_with_noise_equals_whole_with_same_generator(pair, speech):
    conv, _ = pair
    src, tgt = embeddings(5)
    whole = conv.convert(speech, src, tgt, tau=0.3, generator=torch.Generator().manual_seed(9))
    streamed = conv.convert_stream(speech, src, tgt, tau=0.3, generator=torch.Generator().manual_seed(9))
    assert np.max(np.abs(np.concatenate(list(streamed)) - whole)) <= 1e-4


@pytest.mark.parametrize("samples", [1024, 256 * 7 + 13, 256 * 40])
def test_stream_on_short_and_odd_lengths(tiny_v2, samples):
    conv = ToneColorConverter.load(tiny_v2[0], device="cpu")
    audio = np.sin(np.arange(samples) / 9.0).astype(np.float32) * 0.5
    src, tgt = embeddings(6)
    whole = conv.convert(audio, src, tgt, tau=0)
    streamed = np.concatenate(list(conv.convert_stream(audio, src, tgt, tau=0, first_chunk_frames=2, chunk_frames=4)))
    assert len(whole) == samples // 256 * 256
    assert np.max(np.abs(streamed - whole)) <= 1e-4


def test_stream_yields_before_the_work_is_done(tiny_v2, speech):
    conv = ToneColorConverter.load(tiny_v2[0], device="cpu")
    src, tgt = embeddings(7)
    stream = conv.convert_stream(speech, src, tgt, tau=0)
    first = next(stream)
    assert len(first) == FIRST_CHUNK_FRAMES * 256  # the first chunk is small: the rest is still to be computed
    assert sum(len(c) for c in stream) == (len(speech) // 256 - FIRST_CHUNK_FRAMES) * 256


def test_stream_keeps_memory_bounded(tiny_v2, speech):
    conv = ToneColorConverter.load(tiny_v2[0], device="cpu")
    src, tgt = embeddings(10)
    long = np.tile(speech, 4)
    import voiceclone.openvoice.streaming as streaming

    kept = []
    original = streaming.Node._trim

    def spy(self):
        original(self)
        if self._buf is not None:
            kept.append(self._buf.shape[-1])

    streaming.Node._trim = spy
    try:
        frames = (
            sum(len(c) for c in conv.convert_stream(long, src, tgt, tau=0, first_chunk_frames=4, chunk_frames=16))
            // 256
        )
    finally:
        streaming.Node._trim = original
    # No stage keeps more than a few chunks' worth of its sequence, however long the utterance.
    assert max(kept) < 256 * 64 and frames > 600


def test_resblock_2_and_other_sizes(tmp_path, speech):
    cfg = tiny_config("v1")
    cfg["model"].update(
        resblock="2",
        resblock_kernel_sizes=[3, 5],
        resblock_dilation_sizes=[[1, 3], [1, 2]],
        upsample_rates=[4, 4, 4, 4],
        upsample_kernel_sizes=[8, 8, 8, 8],
        upsample_initial_channel=16,
    )
    ref = random_reference(cfg, seed=3)
    conv = ToneColorConverter.load(save_converter(tmp_path, cfg, ref), device="cpu")
    src, tgt = embeddings(8)
    whole = conv.convert(speech, src, tgt, tau=0)
    assert close(whole, ref.convert(speech, src, tgt))
    streamed = np.concatenate(list(conv.convert_stream(speech, src, tgt, tau=0, first_chunk_frames=3, chunk_frames=9)))
    assert np.max(np.abs(streamed - whole)) <= 1e-4


def test_chunk_spans_cover_exactly():
    for total in (1, 2, 15, 16, 17, 100, 431, 1000):
        spans = list(chunk_spans(total, 16, 128))
        assert spans[0][0] == 0 and spans[-1][1] == total
        assert all(a < b for a, b in spans)
        assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))


def test_real_v2_checkpoint_layout_has_the_published_size(tmp_path):
    state = random_reference(REAL_V2).state_dict()
    assert len(state) == 486
    per_module = {
        m: sum(t.numel() for k, t in state.items() if k.startswith(m + "."))
        for m in ("dec", "enc_q", "flow", "ref_enc")
    }
    assert per_module == {"dec": 14_468_608, "enc_q": 8_823_168, "flow": 8_687_232, "ref_enc": 813_218}
    net = ConverterNetwork(CheckpointConfig.from_dict(REAL_V2))
    load_into(net, dict(state), tmp_path / "checkpoint.pth")  # every key and shape accepted


def test_rejects_bad_audio_and_embeddings(tiny_v2):
    conv = ToneColorConverter.load(tiny_v2[0], device="cpu")
    src, tgt = embeddings(9)
    good = np.zeros(4096, dtype=np.float32)
    with pytest.raises(ValueError, match="NaN"):
        conv.convert(np.full(4096, np.nan, dtype=np.float32), src, tgt)
    with pytest.raises(ValueError, match="mono"):
        conv.convert(np.zeros((2, 4096), dtype=np.float32), src, tgt)
    with pytest.raises(ValueError, match="too short"):
        conv.convert(np.zeros(100, dtype=np.float32), src, tgt)
    with pytest.raises(ValueError, match="tgt_se"):
        conv.convert(good, src, torch.zeros(1, 8, 1))
    with pytest.raises(ValueError, match="tau"):
        conv.convert(good, src, tgt, tau=-1)
    with pytest.raises(ValueError, match="at least one clip"):
        conv.extract_se([])
