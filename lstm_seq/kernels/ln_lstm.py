"""The LayerNorm LSTM recurrence with a hand-written backward and one fused pointwise kernel per step.

The recurrent part of one layer and direction of the LayerNorm LSTM (equations in
:mod:`lstm_seq.lstm`), for a whole sequence, as one autograd node::

    z_t = h_{t-1} W_hh^T                                  one GEMM per step
    a_t = p_t + γ_hh ⊙ norm(z_t)                          p_t = LN(W_ih x_t; γ_ih) + b_ih + b_hh
    i, f, g, o = σ, σ, tanh, σ of the H-slices of a_t
    c_t = f ⊙ c_{t-1} + i ⊙ g
    h_t = o ⊙ tanh(γ_c ⊙ norm(c_t) + β_c)

``p_t`` for all steps is computed outside with ordinary autograd ops (one GEMM and one LayerNorm
over (T, B, 4H)). Here, every step is one GEMM plus one pointwise kernel that does both
LayerNorms, the gates and the cell update (:func:`step_forward`); the backward walks the steps in
reverse with one pointwise kernel (:func:`step_backward`) and one GEMM per step, and computes
dW_hh as a single GEMM after the loop (the haste recipe; docs/performance.md, section 1). The autograd reference
loop, by contrast, launches about 30 small kernels per step forward and more backward.

The pointwise kernels exist twice with the same signature: in Triton (CUDA tensors, or the CPU
under ``TRITON_INTERPRET=1``) and in plain torch (any device and dtype; the float64 ground truth).
Computation is in float32 (float64 for float64 inputs) with autocast off inside.

Shapes: T steps, B batch, H hidden size (no projection), G = 4H.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor

from lstm_seq.kernels import triton_ln_lstm
from lstm_seq.layerwise import reverse_index, reverse_within_lengths
from lstm_seq.reference import LN_EPS, DirectionWeights, input_projection, stack_layers, valid_mask

# (gates (B, G) after activation, n_hh (B, G), rstd_hh (B, 1), n_c (B, H), rstd_c (B, 1))
Saved = tuple[Tensor, Tensor, Tensor, Tensor, Tensor]


def _norm(x: Tensor) -> tuple[Tensor, Tensor]:
    """x (B, N) → (x - mean) * rstd and rstd (B, 1), biased variance, eps ``LN_EPS``."""
    mean = x.mean(-1, keepdim=True)
    var = (x - mean).pow(2).mean(-1, keepdim=True)
    rstd = torch.rsqrt(var + LN_EPS)
    return (x - mean) * rstd, rstd


def _norm_backward(dn: Tensor, n: Tensor, rstd: Tensor) -> Tensor:
    """Gradient through ``n = norm(x)``: dn, n (B, N), rstd (B, 1) → dx (B, N)."""
    return rstd * (dn - dn.mean(-1, keepdim=True) - n * (dn * n).mean(-1, keepdim=True))


def step_forward_torch(
    z: Tensor, p: Tensor, c_prev: Tensor, g_hh: Tensor, g_c: Tensor, b_c: Tensor
) -> tuple[Tensor, Tensor, Saved]:
    """One step's pointwise part. z, p (B, G); c_prev (B, H); g_hh (G,); g_c, b_c (H,).
    Returns h (B, H), c (B, H) and what :func:`step_backward_torch` needs."""
    n_hh, rstd_hh = _norm(z)
    a = p + g_hh * n_hh
    i, f, g, o = a.chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c_prev + i * g
    n_c, rstd_c = _norm(c)
    h = o * torch.tanh(g_c * n_c + b_c)
    return h, c, (torch.cat([i, f, g, o], -1), n_hh, rstd_hh, n_c, rstd_c)


def step_backward_torch(
    dh: Tensor, dc: Tensor, c_prev: Tensor, saved: Saved, g_hh: Tensor, g_c: Tensor, b_c: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Gradients of one step. dh, dc (B, H): of the loss w.r.t. h_t and c_t (rows of padded steps
    zero). Returns dz (B, G), da (B, G) (= d p_t), dc_prev (B, H), and the per-row terms of the
    LayerNorm parameter gradients: da ⊙ n_hh (B, G), dm ⊙ n_c (B, H), dm (B, H)."""
    gates, n_hh, rstd_hh, n_c, rstd_c = saved
    i, f, g, o = gates.chunk(4, dim=-1)
    tm = torch.tanh(g_c * n_c + b_c)
    do = dh * tm
    dm = dh * o * (1 - tm * tm)
    dct = dc + _norm_backward(dm * g_c, n_c, rstd_c)
    da = torch.cat(
        [dct * g * i * (1 - i), dct * c_prev * f * (1 - f), dct * i * (1 - g * g), do * o * (1 - o)], -1
    )
    dz = _norm_backward(da * g_hh, n_hh, rstd_hh)
    return dz, da, dct * f, da * n_hh, dm * n_c, dm


def _use_triton(t: Tensor) -> bool:
    """Triton for float32/16 tensors on CUDA (or anywhere under TRITON_INTERPRET=1); float64 stays
    on the torch path, which computes in float64."""
    where = t.is_cuda or os.environ.get("TRITON_INTERPRET") == "1"
    return triton_ln_lstm.available() and where and t.dtype != torch.float64


class LNRecurrence(torch.autograd.Function):
    """Autograd node for the whole recurrence of one layer and direction (see the module docs)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        p: Tensor,
        h0: Tensor,
        c0: Tensor,
        w_hh: Tensor,
        g_hh: Tensor,
        g_c: Tensor,
        b_c: Tensor,
        mask: Tensor | None,
        use_triton: bool,
    ) -> tuple[Tensor, Tensor, Tensor]:
        out_dtype = p.dtype
        dt = torch.float64 if p.dtype == torch.float64 else torch.float32
        with torch.autocast(p.device.type, enabled=False):
            p, h, c, w, ghh, gc, bc = (t.to(dt) for t in (p, h0, c0, w_hh, g_hh, g_c, b_c))
            fwd = triton_ln_lstm.step_forward if use_triton else step_forward_torch
            steps = p.shape[0]
            outs, hs, cs, saved = [], [], [], []
            for t in range(steps):
                h_new, c_new, s = fwd(h @ w.t(), p[t], c, ghh, gc, bc)
                hs.append(h)
                cs.append(c)
                saved.append(s)
                if mask is None:
                    h, c = h_new, c_new
                    outs.append(h_new)
                else:
                    m = mask[t]
                    h, c = torch.where(m, h_new, h), torch.where(m, c_new, c)
                    outs.append(h_new.masked_fill(~m, 0.0))
            stacked = [torch.stack(x) for x in zip(*saved, strict=True)]
            ctx.save_for_backward(torch.stack(hs), torch.stack(cs), w, ghh, gc, bc, *stacked)
            ctx.mask, ctx.use_triton, ctx.out_dtype = mask, use_triton, out_dtype
            ctx.in_dtypes = (h0.dtype, c0.dtype, w_hh.dtype, g_hh.dtype, g_c.dtype, b_c.dtype)
        return torch.stack(outs).to(out_dtype), h.to(out_dtype), c.to(out_dtype)

    @staticmethod
    def backward(ctx: Any, d_out: Tensor, d_hn: Tensor, d_cn: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        hs, cs, w, ghh, gc, bc, gates, n_hh, rstd_hh, n_c, rstd_c = ctx.saved_tensors
        mask: Tensor | None = ctx.mask
        dt = w.dtype
        bwd = triton_ln_lstm.step_backward if ctx.use_triton else step_backward_torch
        with torch.autocast(w.device.type, enabled=False):
            d_out = d_out.to(dt)
            dh = d_hn.to(dt).clone()
            dc = d_cn.to(dt).clone()
            steps = gates.shape[0]
            dzs: list[Tensor] = [d_out.new_empty(0)] * steps
            das: list[Tensor] = [d_out.new_empty(0)] * steps
            dghh = torch.zeros_like(ghh)
            dgc, dbc = torch.zeros_like(gc), torch.zeros_like(bc)
            for t in range(steps - 1, -1, -1):
                if mask is None:
                    dh_new, dc_new = dh + d_out[t], dc
                else:
                    m = mask[t]
                    dh_new = torch.where(m, dh + d_out[t], 0.0)
                    dc_new = torch.where(m, dc, 0.0)
                saved = (gates[t], n_hh[t], rstd_hh[t], n_c[t], rstd_c[t])
                dz, da, dc_prev, ghh_rows, gc_rows, bc_rows = bwd(dh_new, dc_new, cs[t], saved, ghh, gc, bc)
                dghh += ghh_rows.sum(0)
                dgc += gc_rows.sum(0)
                dbc += bc_rows.sum(0)
                dh_prev = dz @ w
                if mask is not None:
                    dh_prev = dh_prev + torch.where(m, 0.0, dh)
                    dc_prev = dc_prev + torch.where(m, 0.0, dc)
                dh, dc = dh_prev, dc_prev
                dzs[t], das[t] = dz, da
            dz_all = torch.stack(dzs)  # (T, B, G)
            d_w = dz_all.flatten(0, 1).t() @ hs.flatten(0, 1)  # (G, H): one GEMM for all steps
            d_p = torch.stack(das).to(ctx.out_dtype)
        dtypes = ctx.in_dtypes
        return (
            d_p,
            dh.to(dtypes[0]),
            dc.to(dtypes[1]),
            d_w.to(dtypes[2]),
            dghh.to(dtypes[3]),
            dgc.to(dtypes[4]),
            dbc.to(dtypes[5]),
            None,
            None,
        )


def ln_recurrence(
    p: Tensor,
    h0: Tensor,
    c0: Tensor,
    w_hh: Tensor,
    g_hh: Tensor,
    g_c: Tensor,
    b_c: Tensor,
    mask: Tensor | None = None,
    use_triton: bool | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run the recurrence forward over all T steps of p.

    Args:
        p: (T, B, G) input pre-activations, ``LN(W_ih x_t; γ_ih) + b_ih + b_hh``.
        h0, c0: (B, H) initial states.
        w_hh: (G, H); g_hh: (G,) gain of the recurrent LayerNorm; g_c, b_c: (H,) cell LayerNorm.
        mask: (T, B, 1) bool, True at valid steps (each row a prefix), or None (all valid). Past
            its length a row's states stay as they were and its output is zero.
        use_triton: None = Triton when it can run here (a CUDA tensor, or TRITON_INTERPRET=1).

    Returns:
        output (T, B, H), h_n (B, H), c_n (B, H).
    """
    if use_triton is None:
        use_triton = _use_triton(p)
    return LNRecurrence.apply(p, h0, c0, w_hh, g_hh, g_c, b_c, mask, use_triton)


def run_stacked(
    x: Tensor,
    lengths: Tensor | None,
    h0: Tensor,
    c0: Tensor,
    weights: list[list[DirectionWeights]],
    *,
    dropout: float = 0.0,
    training: bool = False,
    use_triton: bool | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """A stack of (bidirectional) LayerNorm LSTM layers without projection, each direction through
    :func:`ln_recurrence`.

    x: (T, B, I); lengths: (B,) CPU int64 or None; h0, c0: (L*D, B, H); weights[layer][direction].
    Returns output (T, B, D*H) (zero past each length), h_n and c_n (L*D, B, H), as
    :func:`lstm_seq.reference.stacked`.
    """
    mask = None if lengths is None else valid_mask(lengths, x.shape[0], x.device)
    num_dirs = len(weights[0])
    index = None if lengths is None or num_dirs == 1 else reverse_index(lengths, x.shape[0], x.device)

    def run(layer_in: Tensor, layer: int, d: int) -> tuple[Tensor, Tensor, Tensor]:
        w = weights[layer][d]
        assert w.ln_hh is not None and w.ln_c_weight is not None and w.ln_c_bias is not None
        k = layer * num_dirs + d
        p = input_projection(layer_in, w)
        if w.b_hh is not None:
            p = p + w.b_hh
        if d == 1:
            p = reverse_within_lengths(p, lengths, index)
        out, h, c = ln_recurrence(
            p, h0[k], c0[k], w.w_hh, w.ln_hh, w.ln_c_weight, w.ln_c_bias, mask, use_triton
        )
        return (reverse_within_lengths(out, lengths, index) if d == 1 else out), h, c

    return stack_layers(x, len(weights), num_dirs, run, dropout=dropout, training=training)
