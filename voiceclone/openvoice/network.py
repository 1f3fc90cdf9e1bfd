"""The converter network: posterior encoder, coupling flow, HiFi-GAN decoder and reference encoder.

Parameter names follow the published checkpoints (`enc_q.enc.in_layers.0.weight`, ...), with weight norm
already folded into plain weights by the loader. Each sequence module builds itself as a chain of incremental
stages (`stream`): asked for everything at once, every stage sees the whole sequence and computes it as the
reference does; asked chunk by chunk, each stage computes only new positions from a window with full context.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

import voiceclone.openvoice.segment as sg
from voiceclone.openvoice.config import CheckpointConfig
from voiceclone.openvoice.segment import Segment
from voiceclone.openvoice.streaming import Node, Stage, UpsampleStage

LRELU_SLOPE = 0.1
POSTERIOR_KERNEL, POSTERIOR_LAYERS = 5, 16
FLOW_KERNEL, FLOW_LAYERS, FLOW_COUPLINGS = 5, 4, 4
REF_ENC_FILTERS = (32, 32, 64, 64, 128, 128)
REF_ENC_GRU = 128


def _conv(seg: Segment, conv: nn.Conv1d) -> Segment:
    return sg.conv1d(seg, conv.weight, conv.bias, conv.padding[0], conv.dilation[0])


def _pointwise(x: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    return F.conv1d(x, conv.weight, conv.bias)


class WaveNet(nn.Module):
    """Gated, speaker-conditioned dilated convolution stack (`WN` in VITS)."""

    def __init__(self, hidden: int, kernel: int, n_layers: int, gin: int, dilation_rate: int = 1):
        super().__init__()
        self.hidden = hidden
        self.cond_layer = nn.Conv1d(gin, 2 * hidden * n_layers, 1)
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        for i in range(n_layers):
            dilation = dilation_rate**i
            self.in_layers.append(
                nn.Conv1d(hidden, 2 * hidden, kernel, dilation=dilation, padding=(kernel * dilation - dilation) // 2)
            )
            self.res_skip_layers.append(nn.Conv1d(hidden, 2 * hidden if i < n_layers - 1 else hidden, 1))

    def stream(self, source: Node, g: torch.Tensor) -> Node:
        """One incremental stage per layer; each carries `[x, skip sum]` to the next, the last only the sum."""
        h = self.hidden
        cond = _pointwise(g, self.cond_layer)
        last = len(self.in_layers) - 1
        node = source
        for i, (in_layer, res_skip) in enumerate(zip(self.in_layers, self.res_skip_layers, strict=False)):

            def layer(seg: Segment, i=i, in_layer=in_layer, res_skip=res_skip) -> Segment:
                x, skip = (seg.x, None) if i == 0 else (seg.x[:, :h], seg.x[:, h:])
                x_in = _conv(seg.with_x(x), in_layer)
                act = x_in.x + cond[:, i * 2 * h : (i + 1) * 2 * h, :]
                acts = torch.tanh(act[:, :h, :]) * torch.sigmoid(act[:, h:, :])
                rs = _pointwise(acts, res_skip)
                lo, hi = x_in.start - seg.start, x_in.end - seg.start
                new_skip = rs if i == last else rs[:, h:, :]
                if skip is not None:
                    new_skip = skip[..., lo:hi] + new_skip
                if i == last:
                    return x_in.with_x(new_skip)
                return x_in.with_x(torch.cat([x[..., lo:hi] + rs[:, :h, :], new_skip], dim=1))

            node = Stage(layer, [node], in_layer.padding[0])
        return node


class PosteriorEncoder(nn.Module):
    """Linear spectrogram -> latent z (mean, log-std, sample)."""

    def __init__(self, spec_channels: int, out_channels: int, hidden: int, gin: int):
        super().__init__()
        self.out_channels = out_channels
        self.pre = nn.Conv1d(spec_channels, hidden, 1)
        self.enc = WaveNet(hidden, POSTERIOR_KERNEL, POSTERIOR_LAYERS, gin)
        self.proj = nn.Conv1d(hidden, out_channels * 2, 1)

    def stream(self, spec: Node, g: torch.Tensor, tau: float, noise: torch.Tensor | None) -> Node:
        """The encoder as incremental stages reading the spectrogram."""
        pre = Stage(lambda seg: seg.with_x(_pointwise(seg.x, self.pre)), [spec])
        hidden = self.enc.stream(pre, g)

        def sample(seg: Segment) -> Segment:
            m, logs = torch.split(_pointwise(seg.x, self.proj), self.out_channels, dim=1)
            eps = torch.zeros_like(m) if noise is None else noise[..., seg.start : seg.end]
            return seg.with_x(m + eps * tau * torch.exp(logs))

        return Stage(sample, [hidden])


class Coupling(nn.Module):
    """Mean-only residual affine coupling layer."""

    def __init__(self, channels: int, hidden: int, gin: int):
        super().__init__()
        self.half = channels // 2
        self.pre = nn.Conv1d(self.half, hidden, 1)
        self.enc = WaveNet(hidden, FLOW_KERNEL, FLOW_LAYERS, gin)
        self.post = nn.Conv1d(hidden, self.half, 1)

    def stream(self, source: Node, g: torch.Tensor, reverse: bool, flip: bool) -> Node:
        """The coupling as incremental stages; `flip` reverses the channels of its output (the Flip after it)."""
        pre = Stage(lambda seg: seg.with_x(_pointwise(seg.x[:, : self.half], self.pre)), [source])
        hidden = self.enc.stream(pre, g)

        def combine(x: Segment, h: Segment) -> Segment:
            m = _pointwise(h.x, self.post)
            x0, x1 = x.x[:, : self.half], x.x[:, self.half :]
            out = torch.cat([x0, x1 - m if reverse else m + x1], dim=1)
            return x.with_x(torch.flip(out, [1]) if flip else out)

        return Stage(combine, [source, hidden])


class Flow(nn.Module):
    """Couplings interleaved with channel flips; state-dict indices 0, 2, 4, 6 (the flips hold nothing)."""

    def __init__(self, channels: int, hidden: int, gin: int):
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(FLOW_COUPLINGS):
            self.flows.append(Coupling(channels, hidden, gin))
            self.flows.append(nn.Identity())  # Flip: a placeholder keeps the published indices

    def stream(self, source: Node, g: torch.Tensor, reverse: bool = False) -> Node:
        """The flow (or its reverse) as incremental stages."""
        couplings = [f for f in self.flows if isinstance(f, Coupling)]
        node = source
        if reverse:
            node = Stage(lambda seg: seg.with_x(torch.flip(seg.x, [1])), [node])  # the last Flip, undone first
            for i, c in enumerate(reversed(couplings)):
                node = c.stream(node, g, reverse=True, flip=i < len(couplings) - 1)
        else:
            for c in couplings:
                node = c.stream(node, g, reverse=False, flip=True)
        return node


class ResBlock1(nn.Module):
    """HiFi-GAN residual block '1': dilated conv then plain conv, per dilation."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=(kernel * d - d) // 2) for d in dilations
        )
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, padding=(kernel - 1) // 2) for _ in dilations)

    def stream(self, source: Node) -> Node:
        """One stage per dilation: x + conv2(lrelu(conv1(lrelu(x))))."""
        node = source
        for c1, c2 in zip(self.convs1, self.convs2, strict=False):

            def step(seg: Segment, c1=c1, c2=c2) -> Segment:
                xt = _conv(seg.with_x(F.leaky_relu(seg.x, LRELU_SLOPE)), c1)
                xt = _conv(xt.with_x(F.leaky_relu(xt.x, LRELU_SLOPE)), c2)
                return xt.with_x(xt.x + seg.crop(xt.start, xt.end).x)

            node = Stage(step, [node], c1.padding[0] + c2.padding[0])
        return node


class ResBlock2(nn.Module):
    """HiFi-GAN residual block '2': one dilated conv per dilation."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=(kernel * d - d) // 2) for d in dilations
        )

    def stream(self, source: Node) -> Node:
        """One stage per dilation: x + conv(lrelu(x))."""
        node = source
        for c in self.convs:

            def step(seg: Segment, c=c) -> Segment:
                xt = _conv(seg.with_x(F.leaky_relu(seg.x, LRELU_SLOPE)), c)
                return xt.with_x(xt.x + seg.crop(xt.start, xt.end).x)

            node = Stage(step, [node], c.padding[0])
        return node


class Generator(nn.Module):
    """HiFi-GAN decoder: latent frames -> waveform."""

    def __init__(self, cfg: CheckpointConfig):
        super().__init__()
        ch0 = cfg.upsample_initial_channel
        self.conv_pre = nn.Conv1d(cfg.inter_channels, ch0, 7, padding=3)
        self.cond = nn.Conv1d(cfg.gin_channels, ch0, 1)
        block = ResBlock1 if cfg.resblock == "1" else ResBlock2
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes, strict=False)):
            self.ups.append(nn.ConvTranspose1d(ch0 // 2**i, ch0 // 2 ** (i + 1), k, u, padding=(k - u) // 2))
        for i in range(len(self.ups)):
            ch = ch0 // 2 ** (i + 1)
            for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes, strict=False):
                self.resblocks.append(block(ch, k, d))
        self.conv_post = nn.Conv1d(ch, 1, 7, padding=3, bias=False)
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        self.channels_last = False

    def rate_exact(self) -> bool:
        """Every upsampling makes exactly `rate` outputs per input, so frames map to whole sample ranges."""
        return all(up.kernel_size[0] - 2 * up.padding[0] == up.stride[0] for up in self.ups)

    def use_channels_last(self) -> None:
        """Hold weights as `[O, I, 1, k]` channels-last and run on `[N, C, 1, T]` channels-last activations.

        oneDNN's CPU convolutions on this layout skip the reorders it otherwise makes around every call: the
        narrow, long layers of the last upsampling stages run two to three times faster (whole decoder about
        20 %). The sums are ordered differently, so results differ from the reference by float32 rounding
        (about 1e-7 relative), well inside the parity tolerance.
        """
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)) and module.weight.ndim == 3:
                    w = module.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
                    module.weight = nn.Parameter(w, requires_grad=False)
        self.channels_last = True

    def stream(self, latents: Node, g: torch.Tensor) -> Node:
        """The decoder as a graph of incremental stages reading `latents`; its output node yields samples."""
        last = self.channels_last
        cond = sg.conv1d(Segment.whole(g.unsqueeze(2) if last else g), self.cond.weight, self.cond.bias, 0).x

        def pre(seg: Segment) -> Segment:
            if last:
                seg = seg.with_x(seg.x.unsqueeze(2).contiguous(memory_format=torch.channels_last))
            x = _conv(seg, self.conv_pre)
            return x.with_x(x.x + cond)

        node: Node = Stage(pre, [latents], self.conv_pre.padding[0])
        for i, up in enumerate(self.ups):

            def upsample(seg: Segment, up=up) -> Segment:
                x = seg.with_x(F.leaky_relu(seg.x, LRELU_SLOPE))
                return sg.conv_transpose1d(x, up.weight, up.bias, up.stride[0], up.padding[0])

            node = UpsampleStage(upsample, node, up.stride[0], up.kernel_size[0], up.padding[0])
            branches = [self.resblocks[i * self.num_kernels + j].stream(node) for j in range(self.num_kernels)]

            def mean(*segs: Segment) -> Segment:
                xs = segs[0].x
                for s in segs[1:]:
                    xs = xs + s.x
                return segs[0].with_x(xs / self.num_kernels)

            node = Stage(mean, branches)

        def post(seg: Segment) -> Segment:
            x = _conv(seg.with_x(F.leaky_relu(seg.x)), self.conv_post)
            y = torch.tanh(x.x)
            return x.with_x(y.squeeze(2).contiguous() if last else y)

        return Stage(post, [node], self.conv_post.padding[0])


class ReferenceEncoder(nn.Module):
    """Spectrogram -> speaker (tone color) embedding."""

    def __init__(self, spec_channels: int, gin: int):
        super().__init__()
        self.spec_channels = spec_channels
        filters = (1,) + REF_ENC_FILTERS
        self.convs = nn.ModuleList(
            nn.Conv2d(filters[i], filters[i + 1], kernel_size=3, stride=2, padding=1)
            for i in range(len(REF_ENC_FILTERS))
        )
        freq = spec_channels
        for _ in REF_ENC_FILTERS:
            freq = (freq - 3 + 2) // 2 + 1
        self.gru = nn.GRU(REF_ENC_FILTERS[-1] * freq, REF_ENC_GRU, batch_first=True)
        self.proj = nn.Linear(REF_ENC_GRU, gin)
        self.layernorm = nn.LayerNorm(spec_channels)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """`spec` is `[N, C, T]`; returns `[N, gin]`."""
        inputs = spec.transpose(1, 2)
        n = inputs.size(0)
        out = self.layernorm(inputs.view(n, 1, -1, self.spec_channels))
        for conv in self.convs:
            out = F.relu(conv(out))
        out = out.transpose(1, 2)
        t = out.size(1)
        out = out.contiguous().view(n, t, -1)
        _, hidden = self.gru(out)
        return self.proj(hidden.squeeze(0))


class ConverterNetwork(nn.Module):
    """The four modules of a published converter checkpoint."""

    def __init__(self, cfg: CheckpointConfig):
        super().__init__()
        self.dec = Generator(cfg)
        self.enc_q = PosteriorEncoder(cfg.spec_channels, cfg.inter_channels, cfg.hidden_channels, cfg.gin_channels)
        self.flow = Flow(cfg.inter_channels, cfg.hidden_channels, cfg.gin_channels)
        self.ref_enc = ReferenceEncoder(cfg.spec_channels, cfg.gin_channels)


_WEIGHT_NORMED = re.compile(
    r"(enc_q|flow\.flows\.\d+)\.enc\.(cond_layer|in_layers\.\d+|res_skip_layers\.\d+)"
    r"|dec\.ups\.\d+|dec\.resblocks\.\d+\.convs[12]?\.\d+|ref_enc\.convs\.\d+"
)


def weight_normed(module_name: str) -> bool:
    """Whether the published checkpoint stores this module's weight as `weight_g` and `weight_v`."""
    return _WEIGHT_NORMED.fullmatch(module_name) is not None
