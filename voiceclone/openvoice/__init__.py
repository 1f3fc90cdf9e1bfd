"""The OpenVoice tone-color converter, checkpoint-compatible with the published V1 and V2 weights.

Plain PyTorch; knows nothing of Pipecat, the CLI or the voice library. Heavy imports (torch) happen on first
use of a converter class, so that a command that never converts starts quickly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from voiceclone.openvoice.errors import CheckpointError

if TYPE_CHECKING:
    from voiceclone.openvoice.config import CheckpointConfig
    from voiceclone.openvoice.converter import ToneColorConverter, chunk_spans

__all__ = ["CheckpointError", "CheckpointConfig", "ToneColorConverter", "chunk_spans"]


def __getattr__(name: str) -> Any:
    if name in ("ToneColorConverter", "chunk_spans"):
        from voiceclone.openvoice import converter

        return getattr(converter, name)
    if name == "CheckpointConfig":
        from voiceclone.openvoice.config import CheckpointConfig

        return CheckpointConfig
    raise AttributeError(name)
