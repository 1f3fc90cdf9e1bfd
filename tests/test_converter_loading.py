"""Loading converters: every way a folder or file can be wrong ends in a CheckpointError naming file and key."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from checkpoints import random_reference, save_converter, tiny_config
from loguru import logger

from voiceclone.openvoice.converter import ToneColorConverter
from voiceclone.openvoice.errors import CheckpointError


@pytest.fixture
def folder(tmp_path, tiny_v2) -> Path:
    """A private copy of the tiny V2 converter that a test may damage."""
    return Path(shutil.copytree(tiny_v2[0], tmp_path / "conv"))


def state_of(folder: Path) -> dict:
    return torch.load(folder / "checkpoint.pth", weights_only=True)["model"]


def save_state(folder: Path, state: dict) -> None:
    torch.save({"model": state}, folder / "checkpoint.pth")


def expect_error(folder: Path, *needles: str) -> str:
    with pytest.raises(CheckpointError) as info:
        ToneColorConverter.load(folder, device="cpu")
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message
    return message


def test_missing_folder(tmp_path):
    expect_error(tmp_path / "nope", "not found")


def test_a_file_is_not_a_folder(folder):
    expect_error(folder / "config.json", "not a folder")


def test_missing_config(folder):
    (folder / "config.json").unlink()
    expect_error(folder, "config.json", "not found")


def test_config_not_json(folder):
    (folder / "config.json").write_text("{ this is not json")
    expect_error(folder, "config.json", "not valid JSON")


def test_config_bad_value_names_the_key(folder):
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model"]["upsample_rates"] = "eight"
    (folder / "config.json").write_text(json.dumps(cfg))
    expect_error(folder, "config.json", "model.upsample_rates")


def test_config_of_a_tts_model_is_refused(folder):
    cfg = json.loads((folder / "config.json").read_text())
    cfg["data"]["n_speakers"] = 10
    (folder / "config.json").write_text(json.dumps(cfg))
    expect_error(folder, "n_speakers")


def test_missing_checkpoint(folder):
    (folder / "checkpoint.pth").unlink()
    expect_error(folder, "checkpoint.pth", "not found")


def test_empty_checkpoint(folder):
    (folder / "checkpoint.pth").write_bytes(b"")
    expect_error(folder, "checkpoint.pth", "empty")


def test_truncated_checkpoint(folder):
    data = (folder / "checkpoint.pth").read_bytes()
    (folder / "checkpoint.pth").write_bytes(data[: len(data) // 2])
    expect_error(folder, "checkpoint.pth", "truncated")


def test_text_file_named_checkpoint(folder):
    (folder / "checkpoint.pth").write_text("hello, I am not a checkpoint\n" * 20)
    expect_error(folder, "checkpoint.pth")


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-checkpoint",))


def test_pickle_that_runs_code_is_refused_and_does_not_run(folder, monkeypatch):
    monkeypatch.chdir(folder)
    with open(folder / "checkpoint.pth", "wb") as fh:
        pickle.dump({"model": _RunsCode()}, fh)
    expect_error(folder, "checkpoint.pth", "refused")
    assert not (folder / "pwned-by-checkpoint").exists()


def test_torch_save_of_an_object_that_runs_code_is_refused(folder, monkeypatch):
    monkeypatch.chdir(folder)
    torch.save({"model": _RunsCode()}, folder / "checkpoint.pth")
    expect_error(folder, "checkpoint.pth", "refused")
    assert not (folder / "pwned-by-checkpoint").exists()


def test_not_the_openvoice_layout(folder):
    torch.save(state_of(folder), folder / "checkpoint.pth")  # a bare state dict, no "model" entry
    expect_error(folder, "checkpoint.pth", "'model'")


def test_missing_tensor_is_named(folder):
    state = state_of(folder)
    del state["dec.ups.1.weight_v"]
    save_state(folder, state)
    expect_error(folder, "checkpoint.pth", "missing tensor dec.ups.1.weight_v")


def test_unexpected_tensor_is_named(folder):
    state = state_of(folder)
    state["emb_g.weight"] = torch.zeros(4, 16)
    save_state(folder, state)
    expect_error(folder, "unexpected tensor emb_g.weight")


def test_misshapen_tensor_is_named(folder):
    state = state_of(folder)
    state["enc_q.proj.weight"] = torch.zeros(3, 3, 1)
    save_state(folder, state)
    expect_error(folder, "enc_q.proj.weight", "shape [3, 3, 1]")


def test_tensor_with_nan_is_named(folder):
    state = state_of(folder)
    state["flow.flows.2.post.bias"][0] = float("nan")
    save_state(folder, state)
    expect_error(folder, "flow.flows.2.post.bias", "NaN")


def test_non_tensor_value_is_named(folder):
    state = state_of(folder)
    state["ref_enc.proj.bias"] = [1.0, 2.0]
    save_state(folder, state)
    expect_error(folder, "ref_enc.proj.bias", "not a tensor")


def test_config_and_checkpoint_of_different_sizes(folder):
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model"]["hidden_channels"] = 24
    (folder / "config.json").write_text(json.dumps(cfg))
    expect_error(folder, "checkpoint.pth", "shape")


def test_new_style_weight_norm_keys_are_accepted(folder, tiny_v2, speech):
    state = state_of(folder)
    renamed = {}
    for key, value in state.items():
        if key.endswith(".weight_g"):
            key = key[: -len(".weight_g")] + ".parametrizations.weight.original0"
        elif key.endswith(".weight_v"):
            key = key[: -len(".weight_v")] + ".parametrizations.weight.original1"
        renamed[key] = value
    save_state(folder, renamed)
    src = torch.zeros(1, 16, 1)
    a = ToneColorConverter.load(folder, device="cpu").convert(speech[:5000], src, src, tau=0)
    b = ToneColorConverter.load(tiny_v2[0], device="cpu").convert(speech[:5000], src, src, tau=0)
    assert (a == b).all()


def test_half_precision_checkpoint_loads_as_float32(folder):
    state = {k: v.half() for k, v in state_of(folder).items()}
    save_state(folder, state)
    conv = ToneColorConverter.load(folder, device="cpu")
    assert all(p.dtype == torch.float32 for p in conv.network.parameters())


@pytest.mark.parametrize("device", ["cuda", "cuda:3", "mps"])
def test_missing_device_falls_back_to_cpu(tiny_v2, device, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    warnings: list[str] = []
    sink = logger.add(warnings.append, level="WARNING", format="{message}")
    try:
        conv = ToneColorConverter.load(tiny_v2[0], device=device)
    finally:
        logger.remove(sink)
    assert conv.device == torch.device("cpu")
    assert any("not available" in w for w in warnings)


def test_auto_device_is_cpu_without_accelerators(tiny_v2, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert ToneColorConverter.load(tiny_v2[0]).device == torch.device("cpu")


def test_unknown_device_is_an_error(tiny_v2):
    with pytest.raises(ValueError, match="unknown device"):
        ToneColorConverter.load(tiny_v2[0], device="tpu-please")


def test_thread_count_is_settable(tiny_v2):
    before = torch.get_num_threads()
    try:
        ToneColorConverter.load(tiny_v2[0], device="cpu", threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_runs_on_cuda_when_present(tiny_v2, speech):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    gpu = ToneColorConverter.load(tiny_v2[0], device="cuda")
    cpu = ToneColorConverter.load(tiny_v2[0], device="cpu")
    src = torch.zeros(1, 16, 1)
    assert gpu.device.type == "cuda"
    assert abs(gpu.convert(speech, src, src, tau=0) - cpu.convert(speech, src, src, tau=0)).max() < 1e-4


def test_v1_checkpoint_saved_by_reference_layout_roundtrips(tmp_path):
    cfg = tiny_config("v1")
    folder = save_converter(tmp_path / "v1", cfg, random_reference(cfg, seed=5))
    assert ToneColorConverter.load(folder, device="cpu").version == "v1"
