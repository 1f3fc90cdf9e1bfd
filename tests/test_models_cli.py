"""`voiceclone models ...` and `voiceclone --help`, run as a user runs them (a subprocess)."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import torch
from cli_helpers import error_line, run_cli
from fake_hub import FakeHub


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_cli(*args, env=env, timeout=120)


one_line_error = error_line


def tiny_files(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in ("config.json", "checkpoint.pth")}


def test_help_lists_the_commands():
    result = run("--help")
    assert result.returncode == 0
    assert "models" in result.stdout


def test_version():
    result = run("--version")
    assert result.returncode == 0 and "voiceclone" in result.stdout


def test_list_and_path_with_nothing_installed(tmp_path):
    result = run("models", "list", "--models-dir", str(tmp_path))
    assert result.returncode == 0
    assert "not installed" in result.stdout and "v2" in result.stdout and "v1" in result.stdout
    error = one_line_error(run("models", "path", "--models-dir", str(tmp_path)))
    assert "voiceclone models download" in error


def test_list_and_path_find_an_installed_converter(tmp_path, tiny_v2):
    shutil.copytree(tiny_v2[0], tmp_path / "openvoice-v2")
    env = {"VOICECLONE_MODELS_DIR": str(tmp_path)}
    listed = run("models", "list", env=env)
    assert listed.returncode == 0 and "installed" in listed.stdout and str(tmp_path) in listed.stdout
    path = run("models", "path", env=env)
    assert path.returncode == 0 and path.stdout.strip() == str(tmp_path / "openvoice-v2")


def test_models_dir_from_a_config_file(tmp_path, tiny_v2):
    shutil.copytree(tiny_v2[0], tmp_path / "store" / "openvoice-v2")
    config = tmp_path / "settings.yaml"
    config.write_text(f"models_dir: {tmp_path / 'store'}\n")
    result = run("models", "path", "--config", str(config))
    assert result.returncode == 0 and result.stdout.strip() == str(tmp_path / "store" / "openvoice-v2")


def test_bad_config_file_is_one_line(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("models_dir: [unclosed\n")
    assert "not valid YAML" in one_line_error(run("models", "list", "--config", str(config)))
    assert "not found" in one_line_error(run("models", "list", "--config", str(tmp_path / "missing.yaml")))


def test_a_models_folder_that_is_a_file_is_one_line(tmp_path):
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("x")
    for command in (["models", "list"], ["models", "download"]):
        line = one_line_error(run(*command, env={"VOICECLONE_MODELS_DIR": str(not_a_folder)}))
        assert f"{not_a_folder}: not a folder; converters are kept in a folder" in line
    assert not_a_folder.read_text() == "x"


def test_unknown_version_is_one_line(tmp_path):
    assert "unknown converter version" in one_line_error(
        run("models", "path", "--version", "v9", "--models-dir", str(tmp_path))
    )


def test_download_without_network_says_what_to_do(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run("models", "download", "--models-dir", str(tmp_path), env={"HF_ENDPOINT": f"http://127.0.0.1:{port}"})
    error = one_line_error(result)
    assert "cannot download" in error and "converter/checkpoint.pth" in error and "openvoice-v2" in error
    assert not (tmp_path / "openvoice-v2").exists()


def test_download_into_a_folder_from_a_hub(tmp_path, tiny_v2):
    with FakeHub({"myshell-ai/OpenVoiceV2": {f"converter/{k}": v for k, v in tiny_files(tiny_v2[0]).items()}}) as hub:
        result = run("models", "download", "--models-dir", str(tmp_path), env={"HF_ENDPOINT": hub.url})
    assert result.returncode == 0, result.stderr
    target = tmp_path / "openvoice-v2"
    assert (target / "checkpoint.pth").read_bytes() == (tiny_v2[0] / "checkpoint.pth").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["openvoice-v2"]  # no staging debris
    again = run("models", "download", "--models-dir", str(tmp_path), env={"HF_ENDPOINT": "http://127.0.0.1:9"})
    assert again.returncode == 0 and "already installed" in again.stdout


def test_download_v1_into_the_hf_cache(tmp_path, tiny_v1):
    files = {f"checkpoints/converter/{k}": v for k, v in tiny_files(tiny_v1[0]).items()}
    env = {"HF_HUB_CACHE": str(tmp_path / "cache")}
    with FakeHub({"myshell-ai/OpenVoice": files}) as hub:
        result = run("models", "download", "--version", "v1", env={**env, "HF_ENDPOINT": hub.url})
    assert result.returncode == 0, result.stderr
    path = run("models", "path", "--version", "v1", env=env)
    assert path.returncode == 0 and (Path(path.stdout.strip()) / "config.json").is_file()


def test_download_of_a_corrupt_checkpoint_is_refused(tmp_path, tiny_v2):
    files = tiny_files(tiny_v2[0])
    state = torch.load(tiny_v2[0] / "checkpoint.pth", weights_only=True)
    del state["model"]["dec.conv_post.weight"]
    broken = tmp_path / "broken.pth"
    torch.save(state, broken)
    files["checkpoint.pth"] = broken.read_bytes()
    store = tmp_path / "store"
    with FakeHub({"myshell-ai/OpenVoiceV2": {f"converter/{k}": v for k, v in files.items()}}) as hub:
        error = one_line_error(run("models", "download", "--models-dir", str(store), env={"HF_ENDPOINT": hub.url}))
    assert "fails its checks" in error and "dec.conv_post.weight" in error
    assert not (store / "openvoice-v2").exists()
