"""Shared fixtures: tiny random converters in the published format, their reference twins, real speech."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))

from checkpoints import random_reference, save_converter, tiny_config  # noqa: E402


@pytest.fixture(scope="session")
def tiny_v2(tmp_path_factory):
    """(folder, reference model) of a tiny random V2 converter."""
    cfg = tiny_config("v2")
    ref = random_reference(cfg, seed=1)
    return save_converter(tmp_path_factory.mktemp("tiny_v2"), cfg, ref), ref


@pytest.fixture(scope="session")
def tiny_v1(tmp_path_factory):
    """(folder, reference model) of a tiny random V1 converter (no `_version_`, no `zero_g`)."""
    cfg = tiny_config("v1")
    ref = random_reference(cfg, seed=2)
    return save_converter(tmp_path_factory.mktemp("tiny_v1"), cfg, ref), ref


@pytest.fixture(scope="session")
def speech() -> np.ndarray:
    """About 3 s of real speech at 22050 Hz from the bundled Piper voice."""
    from benchmarks.speech import speech_sample

    return speech_sample(3.0, 22050)
