"""A second, deliberately plain implementation of the converter, written from the spec for cross-checks.

It uses torch's own `weight_norm` wrappers, so its `state_dict()` is the published checkpoint format
(`weight_g` / `weight_v`), and ordinary padded convolutions over the whole sequence. Tests use it to make tiny
random checkpoints and as an independent oracle for the production code, which folds weight norm and
evaluates windows. Written for clarity, not speed.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

warnings.filterwarnings("ignore", message=".*weight_norm.*deprecated.*")
wn = torch.nn.utils.weight_norm


class RefWN(nn.Module):
    def __init__(self, hidden, kernel, layers, gin):
        super().__init__()
        self.hidden = hidden
        self.cond_layer = wn(nn.Conv1d(gin, 2 * hidden * layers, 1))
        self.in_layers = nn.ModuleList(
            wn(nn.Conv1d(hidden, 2 * hidden, kernel, padding=kernel // 2)) for _ in range(layers)
        )
        self.res_skip_layers = nn.ModuleList(
            wn(nn.Conv1d(hidden, 2 * hidden if i < layers - 1 else hidden, 1)) for i in range(layers)
        )

    def forward(self, x, g):
        h = self.hidden
        cond = self.cond_layer(g)
        total = torch.zeros_like(x)
        for i, (inl, rs) in enumerate(zip(self.in_layers, self.res_skip_layers, strict=False)):
            a = inl(x) + cond[:, 2 * h * i : 2 * h * (i + 1)]
            out = rs(torch.tanh(a[:, :h]) * torch.sigmoid(a[:, h:]))
            if i < len(self.in_layers) - 1:
                x = x + out[:, :h]
                total = total + out[:, h:]
            else:
                total = total + out
        return total


class RefEncQ(nn.Module):
    def __init__(self, spec_ch, inter, hidden, gin):
        super().__init__()
        self.inter = inter
        self.pre = nn.Conv1d(spec_ch, hidden, 1)
        self.enc = RefWN(hidden, 5, 16, gin)
        self.proj = nn.Conv1d(hidden, 2 * inter, 1)

    def forward(self, spec, g, tau, eps):
        stats = self.proj(self.enc(self.pre(spec), g))
        m, logs = stats[:, : self.inter], stats[:, self.inter :]
        return m + eps * tau * torch.exp(logs)


class RefCoupling(nn.Module):
    def __init__(self, ch, hidden, gin):
        super().__init__()
        self.half = ch // 2
        self.pre = nn.Conv1d(self.half, hidden, 1)
        self.enc = RefWN(hidden, 5, 4, gin)
        self.post = nn.Conv1d(hidden, self.half, 1)

    def forward(self, x, g, reverse):
        x0, x1 = x[:, : self.half], x[:, self.half :]
        m = self.post(self.enc(self.pre(x0), g))
        return torch.cat([x0, x1 - m if reverse else x1 + m], 1)


class RefFlow(nn.Module):
    def __init__(self, ch, hidden, gin):
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(4):
            self.flows.append(RefCoupling(ch, hidden, gin))
            self.flows.append(nn.Identity())

    def forward(self, x, g, reverse=False):
        for f in reversed(self.flows) if reverse else self.flows:
            x = f(x, g, reverse) if isinstance(f, RefCoupling) else x.flip(1)
        return x


class RefResBlock1(nn.Module):
    def __init__(self, ch, k, dil):
        super().__init__()
        self.convs1 = nn.ModuleList(wn(nn.Conv1d(ch, ch, k, dilation=d, padding=d * (k - 1) // 2)) for d in dil)
        self.convs2 = nn.ModuleList(wn(nn.Conv1d(ch, ch, k, padding=(k - 1) // 2)) for _ in dil)

    def forward(self, x):
        for a, b in zip(self.convs1, self.convs2, strict=False):
            x = x + b(F.leaky_relu(a(F.leaky_relu(x, 0.1)), 0.1))
        return x


class RefResBlock2(nn.Module):
    def __init__(self, ch, k, dil):
        super().__init__()
        self.convs = nn.ModuleList(wn(nn.Conv1d(ch, ch, k, dilation=d, padding=d * (k - 1) // 2)) for d in dil)

    def forward(self, x):
        for a in self.convs:
            x = x + a(F.leaky_relu(x, 0.1))
        return x


class RefDec(nn.Module):
    def __init__(self, m):
        super().__init__()
        c0 = m["upsample_initial_channel"]
        self.nk = len(m["resblock_kernel_sizes"])
        self.conv_pre = nn.Conv1d(m["inter_channels"], c0, 7, padding=3)
        self.cond = nn.Conv1d(m["gin_channels"], c0, 1)
        block = RefResBlock1 if m["resblock"] == "1" else RefResBlock2
        self.ups = nn.ModuleList(
            wn(nn.ConvTranspose1d(c0 >> i, c0 >> (i + 1), k, u, padding=(k - u) // 2))
            for i, (u, k) in enumerate(zip(m["upsample_rates"], m["upsample_kernel_sizes"], strict=False))
        )
        self.resblocks = nn.ModuleList(
            block(c0 >> (i + 1), k, d)
            for i in range(len(self.ups))
            for k, d in zip(m["resblock_kernel_sizes"], m["resblock_dilation_sizes"], strict=False)
        )
        self.conv_post = nn.Conv1d(c0 >> len(self.ups), 1, 7, padding=3, bias=False)

    def forward(self, x, g):
        x = self.conv_pre(x) + self.cond(g)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, 0.1))
            x = sum(self.resblocks[i * self.nk + j](x) for j in range(self.nk)) / self.nk
        return torch.tanh(self.conv_post(F.leaky_relu(x, 0.01)))


class RefRefEnc(nn.Module):
    def __init__(self, spec_ch, gin):
        super().__init__()
        chans = [1, 32, 32, 64, 64, 128, 128]
        self.convs = nn.ModuleList(wn(nn.Conv2d(chans[i], chans[i + 1], 3, 2, 1)) for i in range(6))
        f = spec_ch
        for _ in range(6):
            f = (f - 1) // 2 + 1
        self.gru = nn.GRU(128 * f, 128, batch_first=True)
        self.proj = nn.Linear(128, gin)
        self.layernorm = nn.LayerNorm(spec_ch)

    def forward(self, spec):
        x = self.layernorm(spec.transpose(1, 2)).unsqueeze(1)
        for c in self.convs:
            x = F.relu(c(x))
        x = x.permute(0, 2, 1, 3).reshape(x.shape[0], x.shape[2], -1)
        _, h = self.gru(x)
        return self.proj(h[0])


class RefConverter(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        d, m = config["data"], config["model"]
        spec_ch = d["filter_length"] // 2 + 1
        self.cfg = config
        self.zero_g = bool(m.get("zero_g", False))
        self.dec = RefDec(m)
        self.enc_q = RefEncQ(spec_ch, m["inter_channels"], m["hidden_channels"], m["gin_channels"])
        self.flow = RefFlow(m["inter_channels"], m["hidden_channels"], m["gin_channels"])
        self.ref_enc = RefRefEnc(spec_ch, m["gin_channels"])

    def spectrogram(self, audio):
        d = self.cfg["data"]
        n, hop, win = d["filter_length"], d["hop_length"], d["win_length"]
        y = torch.as_tensor(audio, dtype=torch.float32)[None, None]
        y = F.pad(y, ((n - hop) // 2, (n - hop) // 2), mode="reflect")[:, 0]
        s = torch.stft(y, n, hop, win, torch.hann_window(win), center=False, return_complex=True)
        return torch.sqrt(s.real**2 + s.imag**2 + 1e-6)

    @torch.no_grad()
    def extract_se(self, clips):
        return torch.stack([self.ref_enc(self.spectrogram(c)).unsqueeze(-1) for c in clips]).mean(0)

    @torch.no_grad()
    def convert(self, audio, src, tgt, tau=0.0, eps=None):
        spec = self.spectrogram(audio)
        zeros = torch.zeros_like(src)
        if eps is None:
            eps = torch.zeros(1, self.cfg["model"]["inter_channels"], spec.shape[-1])
        z = self.enc_q(spec, zeros if self.zero_g else src, tau, eps)
        z = self.flow(self.flow(z, src), tgt, reverse=True)
        return self.dec(z, zeros if self.zero_g else tgt)[0, 0].numpy()
