"""Streaming recognition with a unidirectional model: audio in chunks, greedy partial text as it comes.

A :class:`StreamingSession` gives the numbers of the whole-utterance computation (``ASRModule.forward`` on the
complete clip) up to float rounding, whatever the chunk sizes, because each stage keeps exactly the context
its next output needs and emits an output only once everything it depends on has arrived:

===============  ===========================================  =====================================
stage            an output at index t needs                   carried between chunks
===============  ===========================================  =====================================
MFCC frame t     samples [t·hop, t·hop + n_fft)               the samples of the frames not yet made
Δ, ΔΔ            frames t−2n … t+2n (n = delta_window // 2;    the last 4n static frames
                 the first/last frame replicated at the ends)
CMVN             nothing else (global statistics or none)     —
conv u (×2)      inputs 2u−1, 2u, 2u+1 (zeros outside)        the last input (and any not yet used)
LayerNorm        its frame                                    —
LSTM             the previous state                           (h, c)
===============  ===========================================  =====================================

So the output lags the input by the look-ahead of the deltas and convs (7 MFCC frames ≈ 70 ms plus the
25-ms window with the default settings). :meth:`StreamingSession.finish` closes every stage as the whole clip
ends (replicated last frame, zero conv padding) and returns the final text.

Needs a unidirectional model, ``features.center=False`` and ``features.cmvn`` ``"global"`` or ``"none"``
(per-utterance CMVN needs the whole clip); the unidirectional recipe (``model=asr_unilstm``) trains with
global CMVN statistics stored in the checkpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstm_seq.audio.data.io import as_mono

if TYPE_CHECKING:
    from lstm_seq.audio.module import ASRModule

__all__ = ["StreamingSession", "check_streamable"]


def check_streamable(module: ASRModule) -> None:
    """Raise :class:`ValueError` saying why ``module`` cannot be streamed exactly (if it cannot)."""
    cfg, mcfg = module.feature_cfg, module.model_cfg
    problems = []
    if mcfg.bidirectional:
        problems.append(
            "the model is bidirectional (its reverse direction reads the future; use model=asr_unilstm)"
        )
    if cfg.center:
        problems.append("features.center=true (the first frame's reflection padding reads ahead)")
    if cfg.cmvn == "utterance":
        problems.append("features.cmvn='utterance' needs the whole clip (train with cmvn='global')")
    if problems:
        raise ValueError("cannot stream this model: " + "; ".join(problems))


class _Conv:
    """One stride-2, 3×3, padding-1 convolution + ReLU of the subsampling, applied incrementally in time.

    Input frames (C, F) arrive in order; output ``u`` is made once input ``2u + 1`` is there (or the input
    ended at ``2u`` or ``2u + 1``: zero padding, as the whole-clip convolution)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        self.conv = conv
        self.buf: Tensor | None = None  # (1, C, k, F): inputs [off, off + k)
        self.off = 0
        self.n_in = 0  # inputs received
        self.n_out = 0  # outputs made

    def push(self, x: Tensor | None, final: bool) -> Tensor | None:
        """x: (1, C, t, F) the next inputs, or None. Returns (1, C', u, F') new outputs, or None."""
        if x is not None and x.shape[2] > 0:
            self.buf = x if self.buf is None else torch.cat([self.buf, x], dim=2)
            self.n_in += x.shape[2]
        if final:
            total = (self.n_in - 1) // 2 + 1 if self.n_in > 0 else 0
        else:
            total = self.n_in // 2  # outputs whose last input 2u + 1 has arrived
        if total <= self.n_out:
            return None
        lo, hi = 2 * self.n_out - 1, 2 * total + 1  # input window [lo, hi)
        assert self.buf is not None
        win = self.buf[:, :, max(lo, self.off) - self.off : min(hi, self.n_in) - self.off]
        before, after = max(0, self.off - lo), max(0, hi - self.n_in)  # zeros outside the clip
        win = F.pad(win, (0, 0, before, after))
        c = self.conv
        y = torch.relu(F.conv2d(win, c.weight, c.bias, stride=2, padding=(0, c.padding[1])))
        self.n_out = total
        keep = 2 * total - 1  # the next output's first input
        if keep > self.off:
            self.buf = self.buf[:, :, keep - self.off :]
            self.off = keep
        return y


class StreamingSession:
    """Recognise one stream of audio, chunk by chunk, with greedy CTC decoding.

    Args:
        module: a unidirectional recogniser (:func:`check_streamable`); used in eval mode, not changed.

    ``push(chunk)`` takes the next samples (1-D, float, at ``module.feature_cfg.sample_rate``) and returns the
    text so far; ``finish()`` closes the stream and returns the final text. :attr:`log_probs` holds every
    output frame made so far ((T', V), equal to the whole-clip ``module(wave)`` frames).
    """

    def __init__(self, module: ASRModule) -> None:
        check_streamable(module)
        self.module = module.eval()
        self.cfg = module.feature_cfg
        self.device = module.featurizer.fbanks.device
        self._samples = torch.zeros(0, device=self.device)  # samples from index _sample_off on
        self._sample_off = 0
        self._n_samples = 0
        self._x = torch.zeros(0, self.cfg.coefficients, device=self.device)  # static frames from _x_off on
        self._x_off = 0
        self._n_raw = 0  # static MFCC frames made
        self._n_feat = 0  # full feature frames (Δ, ΔΔ, CMVN) made
        self._convs = [_Conv(c) for c in module.acoustic.subsample.convs]
        self._state: tuple[Tensor, Tensor] | None = None
        self._frames: list[Tensor] = []
        self._ids: list[int] = []
        self._last = module.vocab.blank
        self.finished = False

    # ------------------------------------------------------------------------------------------ API
    @torch.no_grad()
    def push(self, chunk: np.ndarray | Tensor) -> str:
        """Add samples and return the greedy text of everything decoded so far. ``chunk``: (N,), or (C, N) or
        (N, C) whose channels are averaged; float, or integer PCM that is scaled
        (:func:`~lstm_seq.audio.data.io.as_mono`). A chunk with NaN or infinite samples raises ValueError and
        leaves the session as it was."""
        if self.finished:
            raise RuntimeError("push() after finish(): start a new StreamingSession")
        # (N,), (C, N) or (N, C), float or integer PCM; NaN/inf refused (one would poison every later frame)
        wave = torch.from_numpy(as_mono(chunk, allow_empty=True)).to(self.device)
        self._samples = torch.cat([self._samples, wave])
        self._n_samples += wave.numel()
        self._advance(final=False)
        return self.text

    @torch.no_grad()
    def finish(self) -> str:
        """End the stream: flush every stage as the whole clip ends; returns the final text."""
        if not self.finished:
            self._advance(final=True)
            self.finished = True
        return self.text

    @property
    def text(self) -> str:
        """The greedy transcript so far (CTC: repeats collapsed, blanks removed)."""
        return self.module.vocab.decode(self._ids)

    @property
    def log_probs(self) -> Tensor:
        """(T', V) log-probabilities of every output frame made so far."""
        if not self._frames:
            return torch.zeros(0, len(self.module.vocab), device=self.device)
        return torch.cat(self._frames)

    # ------------------------------------------------------------------------------------ internals
    def _static_frames(self) -> Tensor:
        """Static features (n, coefficients) — MFCCs or log-mel bands — of every frame whose window is complete,
        from the buffered samples."""
        cfg, fe = self.cfg, self.module.featurizer
        total = int(cfg.num_frames(self._n_samples))
        n = total - self._n_raw
        if n <= 0:
            return self._x.new_zeros(0, cfg.coefficients)
        start = self._n_raw * cfg.hop_length - self._sample_off
        seg = self._samples[start : start + (n - 1) * cfg.hop_length + cfg.n_fft]
        spec = torch.stft(
            seg[None], cfg.n_fft, cfg.hop_length, cfg.n_fft, fe.window, center=False, return_complex=True
        )  # (1, n_freqs, n)
        power = spec.real**2 + spec.imag**2
        mel = torch.matmul(power.transpose(1, 2), fe.fbanks)
        feats = (torch.log(mel.clamp(min=cfg.log_floor)) @ fe.dct)[0]  # (n, coefficients)
        self._n_raw = total
        drop = self._n_raw * cfg.hop_length - self._sample_off  # samples no later frame starts before
        if drop > 0:
            self._samples = self._samples[drop:]
            self._sample_off += drop
        return feats

    def _full_frames(self, final: bool) -> Tensor:
        """Features (n, F) of the frames whose Δ/ΔΔ context is complete (all of them when ``final``)."""
        cfg = self.cfg
        if not cfg.deltas:
            end = self._n_raw
            out = self._x[self._n_feat - self._x_off : end - self._x_off]
        else:
            n = (cfg.delta_window - 1) // 2
            end = self._n_raw if final else max(self._n_feat, self._n_raw - 2 * n)
            if end <= self._n_feat or self._n_raw == 0:
                return self._x.new_zeros(0, cfg.dim)
            last = self._n_raw - 1
            denom = n * (n + 1) * (2 * n + 1) / 3

            def x_at(idx: Tensor) -> Tensor:  # static frames at absolute indices, edges replicated
                return self._x[idx.clamp(0, last) - self._x_off]

            j = torch.arange(self._n_feat - n, end + n, device=self.device).clamp(0, last)
            d1 = sum(k * (x_at(j + k) - x_at(j - k)) for k in range(1, n + 1)) / denom  # d1 at clamp(j)
            t = torch.arange(self._n_feat, end, device=self.device)
            rel = t - (self._n_feat - n)
            d2 = sum(k * (d1[rel + k] - d1[rel - k]) for k in range(1, n + 1)) / denom
            out = torch.cat([x_at(t), d1[rel], d2], dim=-1)
        self._n_feat = end
        keep = max(0, self._n_feat - 2 * ((cfg.delta_window - 1) // 2))
        if keep > self._x_off:
            self._x = self._x[keep - self._x_off :]
            self._x_off = keep
        if cfg.cmvn == "global":
            fe = self.module.featurizer
            out = (out - fe.cmvn_mean) / fe.cmvn_std
        return out

    def _advance(self, final: bool) -> None:
        self._x = torch.cat([self._x, self._static_frames()])
        feats = self._full_frames(final)  # (n, F)
        y: Tensor | None = feats[None, None] if feats.shape[0] else None  # (1, 1, n, F)
        for conv in self._convs:
            y = conv.push(y, final)
        if y is None:
            return
        ac = self.module.acoustic
        b, c, t, f = y.shape
        x = y.permute(0, 2, 1, 3).reshape(b, t, c * f)  # (1, t, C·F')
        x = ac.norm(x)
        out, self._state = ac.lstm(x, self._state)
        lp = ac.output(out).float().log_softmax(-1)[0]  # (t, V)
        self._frames.append(lp)
        blank = self.module.vocab.blank
        for i in lp.argmax(-1).tolist():
            if i != self._last and i != blank:
                self._ids.append(i)
            self._last = i
