"""Triton kernels for one step of the LayerNorm LSTM: the pointwise forward and backward of
:mod:`lstm_seq.kernels.ln_lstm` (same signatures as its ``*_torch`` functions, which define the
math). One program per batch row holds the row's 4H pre-activations and H cell values, so both
LayerNorm reductions happen in registers.

Runs on CUDA tensors, or on the CPU under ``TRITON_INTERPRET=1`` (how the CPU tests check them).

Shapes: B batch, H hidden size, G = 4H; every tensor contiguous.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lstm_seq.reference import LN_EPS

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - triton ships with torch's CUDA wheels
    triton = None  # type: ignore[assignment]
    tl = None  # type: ignore[assignment]


def available() -> bool:
    """True when Triton can be imported."""
    return triton is not None


if triton is not None:
    # A jit function may read a module-level name only if it is a constexpr (compiling for a GPU
    # raises NameError otherwise; the interpreter does not check), and Triton resolves the names in
    # annotations too: hence this alias and the unannotated helper below.
    _EPS = tl.constexpr(LN_EPS)

    @triton.jit
    def _tanh(x):
        # tanh to float32 accuracy everywhere: 2σ(2x) − 1 loses the relative accuracy of small |x| (it
        # cancels near 0), so small |x| takes the odd series x − x³/3 + 2x⁵/15 − 17x⁷/315 (next term < 4e-13
        # below 1/16) and the rest (1 − e^(−2|x|)) / (1 + e^(−2|x|)) with the sign of x
        ax = tl.abs(x)
        t = tl.exp(-2.0 * ax)
        big = (1.0 - t) / (1.0 + t)
        big = tl.where(x < 0.0, -big, big)
        x2 = x * x
        small = x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0))))
        return tl.where(ax < 0.0625, small, big)

    @triton.jit
    def _fwd_kernel(
        z_ptr, p_ptr, c_prev_ptr, g_hh_ptr, g_c_ptr, b_c_ptr,  # inputs
        h_ptr, c_ptr, gates_ptr, n_hh_ptr, rstd_hh_ptr, n_c_ptr, rstd_c_ptr,  # outputs
        H: tl.constexpr, BLOCK: tl.constexpr,
    ):  # fmt: skip
        row = tl.program_id(0)
        offs = tl.arange(0, BLOCK)
        ok = offs < H
        g_base = row * 4 * H
        zi = tl.load(z_ptr + g_base + offs, mask=ok, other=0.0).to(tl.float32)
        zf = tl.load(z_ptr + g_base + H + offs, mask=ok, other=0.0).to(tl.float32)
        zg = tl.load(z_ptr + g_base + 2 * H + offs, mask=ok, other=0.0).to(tl.float32)
        zo = tl.load(z_ptr + g_base + 3 * H + offs, mask=ok, other=0.0).to(tl.float32)
        mean = (tl.sum(zi) + tl.sum(zf) + tl.sum(zg) + tl.sum(zo)) / (4 * H)
        di = tl.where(ok, zi - mean, 0.0)
        df = tl.where(ok, zf - mean, 0.0)
        dg = tl.where(ok, zg - mean, 0.0)
        do = tl.where(ok, zo - mean, 0.0)
        var = (tl.sum(di * di) + tl.sum(df * df) + tl.sum(dg * dg) + tl.sum(do * do)) / (4 * H)
        rstd = 1.0 / tl.sqrt(var + _EPS)
        ni, nf, ng, no = di * rstd, df * rstd, dg * rstd, do * rstd
        ai = tl.load(p_ptr + g_base + offs, mask=ok, other=0.0).to(tl.float32)
        af = tl.load(p_ptr + g_base + H + offs, mask=ok, other=0.0).to(tl.float32)
        ag = tl.load(p_ptr + g_base + 2 * H + offs, mask=ok, other=0.0).to(tl.float32)
        ao = tl.load(p_ptr + g_base + 3 * H + offs, mask=ok, other=0.0).to(tl.float32)
        ai += tl.load(g_hh_ptr + offs, mask=ok, other=0.0) * ni
        af += tl.load(g_hh_ptr + H + offs, mask=ok, other=0.0) * nf
        ag += tl.load(g_hh_ptr + 2 * H + offs, mask=ok, other=0.0) * ng
        ao += tl.load(g_hh_ptr + 3 * H + offs, mask=ok, other=0.0) * no
        i = tl.sigmoid(ai)
        f = tl.sigmoid(af)
        g = _tanh(ag)
        o = tl.sigmoid(ao)
        c_prev = tl.load(c_prev_ptr + row * H + offs, mask=ok, other=0.0).to(tl.float32)
        c = f * c_prev + i * g
        c_mean = tl.sum(tl.where(ok, c, 0.0)) / H
        c_d = tl.where(ok, c - c_mean, 0.0)
        c_rstd = 1.0 / tl.sqrt(tl.sum(c_d * c_d) / H + _EPS)
        n_c = c_d * c_rstd
        m = tl.load(g_c_ptr + offs, mask=ok, other=0.0) * n_c + tl.load(b_c_ptr + offs, mask=ok, other=0.0)
        h = o * _tanh(m)
        tl.store(h_ptr + row * H + offs, h, mask=ok)
        tl.store(c_ptr + row * H + offs, c, mask=ok)
        tl.store(gates_ptr + g_base + offs, i, mask=ok)
        tl.store(gates_ptr + g_base + H + offs, f, mask=ok)
        tl.store(gates_ptr + g_base + 2 * H + offs, g, mask=ok)
        tl.store(gates_ptr + g_base + 3 * H + offs, o, mask=ok)
        tl.store(n_hh_ptr + g_base + offs, ni, mask=ok)
        tl.store(n_hh_ptr + g_base + H + offs, nf, mask=ok)
        tl.store(n_hh_ptr + g_base + 2 * H + offs, ng, mask=ok)
        tl.store(n_hh_ptr + g_base + 3 * H + offs, no, mask=ok)
        tl.store(rstd_hh_ptr + row, rstd)
        tl.store(n_c_ptr + row * H + offs, n_c, mask=ok)
        tl.store(rstd_c_ptr + row, c_rstd)

    @triton.jit
    def _bwd_kernel(
        dh_ptr, dc_ptr, c_prev_ptr, gates_ptr, n_hh_ptr, rstd_hh_ptr, n_c_ptr, rstd_c_ptr,
        g_hh_ptr, g_c_ptr, b_c_ptr,  # inputs
        dz_ptr, da_ptr, dc_prev_ptr, ghh_rows_ptr, gc_rows_ptr, bc_rows_ptr,  # outputs
        H: tl.constexpr, BLOCK: tl.constexpr,
    ):  # fmt: skip
        row = tl.program_id(0)
        offs = tl.arange(0, BLOCK)
        ok = offs < H
        g_base = row * 4 * H
        h_base = row * H
        i = tl.load(gates_ptr + g_base + offs, mask=ok, other=0.0)
        f = tl.load(gates_ptr + g_base + H + offs, mask=ok, other=0.0)
        g = tl.load(gates_ptr + g_base + 2 * H + offs, mask=ok, other=0.0)
        o = tl.load(gates_ptr + g_base + 3 * H + offs, mask=ok, other=0.0)
        dh = tl.load(dh_ptr + h_base + offs, mask=ok, other=0.0)
        dc = tl.load(dc_ptr + h_base + offs, mask=ok, other=0.0)
        c_prev = tl.load(c_prev_ptr + h_base + offs, mask=ok, other=0.0)
        n_c = tl.load(n_c_ptr + h_base + offs, mask=ok, other=0.0)
        rstd_c = tl.load(rstd_c_ptr + row)
        g_c = tl.load(g_c_ptr + offs, mask=ok, other=0.0)
        tm = _tanh(g_c * n_c + tl.load(b_c_ptr + offs, mask=ok, other=0.0))
        d_o = dh * tm
        dm = dh * o * (1.0 - tm * tm)
        dn_c = dm * g_c
        dct = dc + rstd_c * (dn_c - tl.sum(dn_c) / H - n_c * (tl.sum(dn_c * n_c) / H))
        dai = dct * g * i * (1.0 - i)
        daf = dct * c_prev * f * (1.0 - f)
        dag = dct * i * (1.0 - g * g)
        dao = d_o * o * (1.0 - o)
        ni = tl.load(n_hh_ptr + g_base + offs, mask=ok, other=0.0)
        nf = tl.load(n_hh_ptr + g_base + H + offs, mask=ok, other=0.0)
        ng = tl.load(n_hh_ptr + g_base + 2 * H + offs, mask=ok, other=0.0)
        no = tl.load(n_hh_ptr + g_base + 3 * H + offs, mask=ok, other=0.0)
        dni = dai * tl.load(g_hh_ptr + offs, mask=ok, other=0.0)
        dnf = daf * tl.load(g_hh_ptr + H + offs, mask=ok, other=0.0)
        dng = dag * tl.load(g_hh_ptr + 2 * H + offs, mask=ok, other=0.0)
        dno = dao * tl.load(g_hh_ptr + 3 * H + offs, mask=ok, other=0.0)
        mean_dn = (tl.sum(dni) + tl.sum(dnf) + tl.sum(dng) + tl.sum(dno)) / (4 * H)
        mean_dnn = (tl.sum(dni * ni) + tl.sum(dnf * nf) + tl.sum(dng * ng) + tl.sum(dno * no)) / (4 * H)
        rstd_hh = tl.load(rstd_hh_ptr + row)
        tl.store(dz_ptr + g_base + offs, rstd_hh * (dni - mean_dn - ni * mean_dnn), mask=ok)
        tl.store(dz_ptr + g_base + H + offs, rstd_hh * (dnf - mean_dn - nf * mean_dnn), mask=ok)
        tl.store(dz_ptr + g_base + 2 * H + offs, rstd_hh * (dng - mean_dn - ng * mean_dnn), mask=ok)
        tl.store(dz_ptr + g_base + 3 * H + offs, rstd_hh * (dno - mean_dn - no * mean_dnn), mask=ok)
        tl.store(da_ptr + g_base + offs, dai, mask=ok)
        tl.store(da_ptr + g_base + H + offs, daf, mask=ok)
        tl.store(da_ptr + g_base + 2 * H + offs, dag, mask=ok)
        tl.store(da_ptr + g_base + 3 * H + offs, dao, mask=ok)
        tl.store(ghh_rows_ptr + g_base + offs, dai * ni, mask=ok)
        tl.store(ghh_rows_ptr + g_base + H + offs, daf * nf, mask=ok)
        tl.store(ghh_rows_ptr + g_base + 2 * H + offs, dag * ng, mask=ok)
        tl.store(ghh_rows_ptr + g_base + 3 * H + offs, dao * no, mask=ok)
        tl.store(dc_prev_ptr + h_base + offs, dct * f, mask=ok)
        tl.store(gc_rows_ptr + h_base + offs, dm * n_c, mask=ok)
        tl.store(bc_rows_ptr + h_base + offs, dm, mask=ok)


def _launch_args(h: int) -> dict[str, int]:
    return {"H": h, "BLOCK": triton.next_power_of_2(h)}


def step_forward(
    z: Tensor, p: Tensor, c_prev: Tensor, g_hh: Tensor, g_c: Tensor, b_c: Tensor
) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor, Tensor, Tensor, Tensor]]:
    """Triton version of :func:`lstm_seq.kernels.ln_lstm.step_forward_torch` (float32)."""
    b, h = c_prev.shape
    z, p, c_prev = z.contiguous(), p.contiguous(), c_prev.contiguous()
    f32 = {"device": z.device, "dtype": torch.float32}
    h_out, c_out = torch.empty(b, h, **f32), torch.empty(b, h, **f32)
    gates, n_hh = torch.empty(b, 4 * h, **f32), torch.empty(b, 4 * h, **f32)
    rstd_hh, n_c, rstd_c = torch.empty(b, 1, **f32), torch.empty(b, h, **f32), torch.empty(b, 1, **f32)
    _fwd_kernel[(b,)](
        z, p, c_prev, g_hh, g_c, b_c, h_out, c_out, gates, n_hh, rstd_hh, n_c, rstd_c, **_launch_args(h)
    )
    return h_out, c_out, (gates, n_hh, rstd_hh, n_c, rstd_c)


def step_backward(
    dh: Tensor,
    dc: Tensor,
    c_prev: Tensor,
    saved: tuple[Tensor, Tensor, Tensor, Tensor, Tensor],
    g_hh: Tensor,
    g_c: Tensor,
    b_c: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Triton version of :func:`lstm_seq.kernels.ln_lstm.step_backward_torch` (float32)."""
    b, h = c_prev.shape
    gates, n_hh, rstd_hh, n_c, rstd_c = (s.contiguous() for s in saved)
    f32 = {"device": dh.device, "dtype": torch.float32}
    dz, da, ghh_rows = (torch.empty(b, 4 * h, **f32) for _ in range(3))
    dc_prev, gc_rows, bc_rows = (torch.empty(b, h, **f32) for _ in range(3))
    _bwd_kernel[(b,)](
        dh.contiguous(), dc.contiguous(), c_prev.contiguous(), gates, n_hh, rstd_hh, n_c, rstd_c,
        g_hh, g_c, b_c, dz, da, dc_prev, ghh_rows, gc_rows, bc_rows, **_launch_args(h),
    )  # fmt: skip
    return dz, da, dc_prev, ghh_rows, gc_rows, bc_rows
