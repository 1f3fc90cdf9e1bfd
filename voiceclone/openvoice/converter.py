"""`ToneColorConverter`: load a published OpenVoice converter and convert tone color, whole or streamed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Union

import numpy as np
import torch

from voiceclone.openvoice.checkpoint import load_into, read_state_dict
from voiceclone.openvoice.config import CheckpointConfig
from voiceclone.openvoice.device import resolve_device
from voiceclone.openvoice.errors import CheckpointError
from voiceclone.openvoice.network import ConverterNetwork
from voiceclone.openvoice.sampling import TAU_DEFAULT, check_tau
from voiceclone.openvoice.spectrogram import linear_spectrogram
from voiceclone.openvoice.streaming import Node, Source

CONFIG_FILE = "config.json"  # the published layout; voiceclone.cloning.checkpoints uses the same names
CHECKPOINT_FILE = "checkpoint.pth"

# Streaming schedule: a small first chunk for a fast first sound, then chunks that double (each costs well
# under the playing time of the one before) up to a size where the recomputed context is a small overhead.
FIRST_CHUNK_FRAMES = 8
CHUNK_FRAMES = 256

AudioLike = Union[np.ndarray, torch.Tensor, Sequence[float]]


class ToneColorConverter:
    """An OpenVoice V1/V2 tone-color converter, checkpoint-compatible and numerically matching the reference."""

    def __init__(self, config: CheckpointConfig, network: ConverterNetwork, device: torch.device, folder: Path):
        """Wrap a network that is already loaded, in eval mode and on `device` (see `load`)."""
        self.config = config
        self.network = network
        self.device = device
        self.folder = folder
        self._checkpoint_sha256: str | None = None
        self._zero_g = torch.zeros(1, config.gin_channels, 1, device=device)

    # ----------------------------------------------------------------------------------------------- loading
    @classmethod
    def load(
        cls,
        folder: str | Path,
        device: str | torch.device = "auto",
        threads: int | None = None,
        checkpoint_sha256: str | None = None,
    ) -> ToneColorConverter:
        """Read `config.json` and `checkpoint.pth` from `folder`; `threads` sets torch's CPU thread count.

        `checkpoint_sha256`, when the caller already knows it, spares hashing the checkpoint later.
        """
        folder = Path(folder).expanduser()
        if not folder.exists():
            raise CheckpointError(f"{folder}: converter folder not found")
        if not folder.is_dir():
            raise CheckpointError(f"{folder}: not a folder (expected one holding {CONFIG_FILE} and {CHECKPOINT_FILE})")
        config = CheckpointConfig.from_file(folder / CONFIG_FILE)
        if threads is not None:
            if threads < 1:
                raise ValueError("threads must be at least 1")
            torch.set_num_threads(threads)
        network = ConverterNetwork(config)
        load_into(network, read_state_dict(folder / CHECKPOINT_FILE), folder / CHECKPOINT_FILE)
        where = resolve_device(device)
        network = network.to(where).eval()
        if where.type == "cpu":
            network.dec.use_channels_last()  # ~20 % faster on CPU (see its docstring)
        converter = cls(config, network, where, folder)
        converter._checkpoint_sha256 = checkpoint_sha256
        return converter

    @property
    def version(self) -> str:
        """`v1` or `v2`: embeddings of one version are meaningless to the other."""
        return self.config.version

    @property
    def sampling_rate(self) -> int:
        """The rate of every waveform going in or out (22050 Hz for the published models)."""
        return self.config.sampling_rate

    @property
    def checkpoint_sha256(self) -> str:
        """SHA-256 of `checkpoint.pth`, computed once, to record which weights made an embedding."""
        if self._checkpoint_sha256 is None:
            digest = hashlib.sha256()
            with open(self.folder / CHECKPOINT_FILE, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            self._checkpoint_sha256 = digest.hexdigest()
        return self._checkpoint_sha256

    # ---------------------------------------------------------------------------------------------- analysis
    def spectrogram(self, audio: AudioLike) -> torch.Tensor:
        """Linear spectrogram `[1, filter_length // 2 + 1, T]` of mono audio at `sampling_rate` (CPU tensor)."""
        with torch.inference_mode():
            return self._spectrogram(self._audio_tensor(audio)).cpu()

    def extract_se(self, clips: Sequence[AudioLike] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """Speaker embedding `[1, gin, 1]`: the mean over clips (float32 arrays at `sampling_rate`)."""
        if isinstance(clips, (np.ndarray, torch.Tensor)) and np.ndim(clips) == 1:
            clips = [clips]
        if len(clips) == 0:
            raise ValueError("extract_se needs at least one clip")
        with torch.inference_mode():
            embeddings = []
            for clip in clips:
                spec = self._spectrogram(self._audio_tensor(clip))
                embeddings.append(self.network.ref_enc(spec).unsqueeze(-1))
            return torch.stack(embeddings).mean(0).cpu()

    # -------------------------------------------------------------------------------------------- conversion
    def convert(
        self,
        audio: AudioLike,
        src_se: torch.Tensor | np.ndarray,
        tgt_se: torch.Tensor | np.ndarray,
        tau: float = TAU_DEFAULT,
        generator: torch.Generator | None = None,
    ) -> np.ndarray:
        """Convert the tone color of `audio` from `src_se` to `tgt_se`; float32 at `sampling_rate`."""
        with torch.inference_mode():
            y = self._audio_tensor(audio)
            spec = self._spectrogram(y)
            g_src, g_tgt = self._embedding(src_se, "src_se"), self._embedding(tgt_se, "tgt_se")
            noise = self._noise(spec.shape[-1], tau, generator)
            audio_out = self._graph(spec, g_src, g_tgt, tau, noise)
            # One request for everything: every stage sees the whole sequence, as the reference computes it.
            return audio_out.window(0, audio_out.total).x[0, 0].float().cpu().numpy()

    def convert_stream(
        self,
        audio: AudioLike,
        src_se: torch.Tensor | np.ndarray,
        tgt_se: torch.Tensor | np.ndarray,
        tau: float = TAU_DEFAULT,
        generator: torch.Generator | None = None,
        chunk_frames: int = CHUNK_FRAMES,
        first_chunk_frames: int = FIRST_CHUNK_FRAMES,
    ) -> Iterator[np.ndarray]:
        """Yield converted audio chunk by chunk; the chunks joined equal `convert` (same noise for tau > 0).

        Every stage is convolutional, so the network runs as a graph of incremental stages: each chunk asks
        each layer only for its new positions, computed from cached inputs with full context on both sides.
        No crossfade, no seams, every position computed once; the first chunk costs a small fraction of the
        whole.
        """
        if chunk_frames < 1 or first_chunk_frames < 1:
            raise ValueError("chunk sizes must be at least one frame")
        with torch.inference_mode():
            y = self._audio_tensor(audio)
            spec = self._spectrogram(y)
            g_src, g_tgt = self._embedding(src_se, "src_se"), self._embedding(tgt_se, "tgt_se")
            total = spec.shape[-1]
            noise = self._noise(total, tau, generator)
        with torch.inference_mode():
            audio_out = self._graph(spec, g_src, g_tgt, tau, noise)
        spf = self.config.samples_per_frame
        if not self.network.dec.rate_exact():  # frames do not map to whole sample spans: one chunk
            first_chunk_frames = chunk_frames = total
        for a, b in chunk_spans(total, first_chunk_frames, chunk_frames):
            with torch.inference_mode():
                hi = audio_out.total if b == total else b * spf
                chunk = audio_out.window(a * spf, hi).x[0, 0].float().cpu().numpy()
            yield chunk

    # ------------------------------------------------------------------------------------------------ helpers
    def _graph(self, spec: torch.Tensor, g_src: torch.Tensor, g_tgt: torch.Tensor, tau: float, noise) -> Node:
        """spectrogram -> enc_q -> flow -> reverse flow -> decoder, as incremental stages; yields samples."""
        net = self.network
        g_enc = self._zero_g if self.config.zero_g else g_src
        z = net.enc_q.stream(Source(spec), g_enc, tau, noise)
        z_hat = net.flow.stream(net.flow.stream(z, g_src), g_tgt, reverse=True)
        return net.dec.stream(z_hat, self._dec_g(g_tgt))

    def _dec_g(self, g_tgt: torch.Tensor) -> torch.Tensor:
        # V2 decodes without speaker conditioning, yet the reference still adds cond(zeros), i.e. its bias.
        return self._zero_g if self.config.zero_g else g_tgt

    def _spectrogram(self, y: torch.Tensor) -> torch.Tensor:
        c = self.config
        return linear_spectrogram(y, c.filter_length, c.hop_length, c.win_length)

    def _noise(self, frames: int, tau: float, generator: torch.Generator | None) -> torch.Tensor | None:
        if check_tau(tau) == 0:
            return None
        shape = (1, self.config.inter_channels, frames)
        where = generator.device if generator is not None else self.device
        return torch.randn(shape, generator=generator, device=where).to(self.device)

    def _audio_tensor(self, audio: AudioLike) -> torch.Tensor:
        y = torch.as_tensor(np.asarray(audio.detach().cpu() if isinstance(audio, torch.Tensor) else audio))
        if y.ndim == 2 and 1 in y.shape:
            y = y.reshape(-1)
        if y.ndim != 1:
            raise ValueError(f"audio must be mono (one dimension), got shape {list(y.shape)}")
        if not (y.is_floating_point() or y.dtype in (torch.int16, torch.int32)):
            raise ValueError(f"audio must hold float samples in [-1, 1], got {y.dtype}")
        y = y.float()
        c = self.config
        shortest = max(c.hop_length, (c.filter_length - c.hop_length) // 2 + 1)
        if y.numel() < shortest:
            raise ValueError(
                f"audio is too short: {y.numel()} samples, at least {shortest} are needed at {c.sampling_rate} Hz"
            )
        if not torch.isfinite(y).all():
            raise ValueError("audio contains NaN or infinite samples")
        return y.unsqueeze(0).to(self.device)

    def _embedding(self, se: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(se.detach().cpu() if isinstance(se, torch.Tensor) else se)).float()
        gin = self.config.gin_channels
        if t.numel() != gin:
            raise ValueError(f"{name} must hold {gin} values (shape [1, {gin}, 1]), got shape {list(t.shape)}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        return t.reshape(1, gin, 1).to(self.device)


def chunk_spans(total: int, first: int, steady: int) -> Iterator[tuple[int, int]]:
    """Frame spans `[a, b)` covering `[0, total)`: `first` frames twice, then doubling up to `steady`.

    Each chunk must be computed while the ones before it play: the second is as small as the first (the
    first has only just started playing), after that each may be twice the one before.
    """
    a, size, n = 0, min(first, steady), 0
    while a < total:
        b = min(total, a + size)
        if total - b < size // 4:  # fold a sliver of a last chunk into this one
            b = total
        yield a, b
        n += 1
        a = b
        if n >= 2:
            size = min(steady, size * 2)
