"""The LayerNorm LSTM kernel backend (lstm_seq.kernels): its hand-written backward (gradcheck), its
agreement with the reference loop through the module, and its Triton kernels run by Triton's
interpreter on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import lstm_seq
from lstm_seq.kernels import ln_lstm, triton_ln_lstm
from lstm_seq.lstm import AUTO_LAYER_NORM_CPU

from ._util import assert_close

REPO = Path(__file__).resolve().parents[2]
# the measurement AUTO_LAYER_NORM_CPU follows: the entry "2026-12-01 — ln_kernel against the reference loop on
# the CPU" in benchmarks/RESULTS.md
AUTO_LAYER_NORM_EVIDENCE = (
    REPO / "benchmarks/results/2026-12-01-cpu-intel-r-xeon-r-processor-1-threads-ln-dispatch.json"
)

T, B, I, H = 6, 3, 4, 5


def _recurrence_inputs() -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    d = {"dtype": torch.float64}
    return (
        torch.randn(T, B, 4 * H, generator=g, **d).requires_grad_(),
        torch.randn(B, H, generator=g, **d).requires_grad_(),
        torch.randn(B, H, generator=g, **d).requires_grad_(),
        (0.5 * torch.randn(4 * H, H, generator=g, **d)).requires_grad_(),
        (1 + 0.1 * torch.randn(4 * H, generator=g, **d)).requires_grad_(),
        (1 + 0.1 * torch.randn(H, generator=g, **d)).requires_grad_(),
        (0.1 * torch.randn(H, generator=g, **d)).requires_grad_(),
    )


@pytest.mark.parametrize("with_mask", [False, True])
def test_hand_written_backward_passes_gradcheck(with_mask: bool) -> None:
    mask = (torch.arange(T)[:, None] < torch.tensor([6, 2, 4])[None, :])[..., None] if with_mask else None
    fn = lambda *a: ln_lstm.ln_recurrence(*a, mask=mask, use_triton=False)  # noqa: E731
    assert torch.autograd.gradcheck(fn, _recurrence_inputs())


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind", ["tensor", "lengths", "packed"])
def test_module_matches_reference_float64(bidirectional: bool, kind: str) -> None:
    torch.manual_seed(0)
    ref = lstm_seq.LSTM(I, H, 2, layer_norm=True, bidirectional=bidirectional, backend="reference").double()
    ours = lstm_seq.LSTM(I, H, 2, layer_norm=True, bidirectional=bidirectional, backend="ln_kernel").double()
    with torch.no_grad():  # non-trivial LayerNorm parameters
        for p in ref.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([6, 2, 4])
    n = 2 * (1 + bidirectional)  # h0 and c0 differ, so a swap of the two would show
    hx = (torch.randn(n, B, H, dtype=torch.float64), torch.randn(n, B, H, dtype=torch.float64))

    def run(m: lstm_seq.LSTM) -> list[torch.Tensor]:
        if kind == "packed":
            out, (h, c) = m(pack_padded_sequence(x, lengths, enforce_sorted=False), hx)
            out = out.data
        else:
            out, (h, c) = m(x, hx, lengths=lengths if kind == "lengths" else None)
        loss = (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum() + h.sum() + 2 * c.sum()
        return [out, h, c, *torch.autograd.grad(loss, [x, *m.parameters()])]

    for a, b in zip(run(ours), run(ref), strict=True):
        assert_close(a, b)


def test_ln_kernel_options_are_checked() -> None:
    with pytest.raises(ValueError, match="layer_norm=True"):
        lstm_seq.LSTM(3, 4, backend="ln_kernel")
    with pytest.raises(ValueError, match="proj_size=0"):
        lstm_seq.LSTM(3, 4, layer_norm=True, proj_size=2, backend="ln_kernel")
    x = torch.zeros(2, 1, 3)
    assert lstm_seq.LSTM(3, 4, layer_norm=True, backend="ln_kernel").plan(x) == "ln_kernel"


def _recorded_winner(pass_: str) -> str:
    """The faster of ln_kernel and the reference loop for ``pass_`` in the measurement that
    AUTO_LAYER_NORM_CPU cites (its ln-1layer rows, with and without lengths, which must agree)."""
    result = json.loads(AUTO_LAYER_NORM_EVIDENCE.read_text())
    rows = [c for c in result["cases"] if c["name"].startswith("ln-1layer") and c["pass"] == pass_]
    assert len(rows) == 2 and all(c["plan"] == "ln_kernel" and "reference_ms" in c for c in rows), rows
    winners = {"ln_kernel" if c["ours_ms"] < c["reference_ms"] else "reference" for c in rows}
    assert len(winners) == 1, f"{pass_}: the padded and unpadded rows disagree; measure again"
    return winners.pop()


@pytest.mark.parametrize("pass_", ["fwd", "fwd+bwd"])
def test_cpu_layer_norm_dispatch_is_the_recorded_faster_backend(pass_: str) -> None:
    """``auto`` on the CPU runs, for each pass, the backend that was faster in the cited result file;
    plan() and forward() follow the table (a forward recorded by autograd is a "fwd+bwd")."""
    want = _recorded_winner(pass_)
    assert AUTO_LAYER_NORM_CPU[pass_] == want
    m = lstm_seq.LSTM(3, 4, layer_norm=True)
    x = torch.zeros(2, 1, 3)
    with torch.set_grad_enabled(pass_ == "fwd+bwd"):
        assert m.plan(x) == want
    if pass_ == "fwd":  # a module whose parameters are frozen does not record either
        m.requires_grad_(False)
        assert m.plan(x) == AUTO_LAYER_NORM_CPU["fwd"]


_INTERPRETED = r"""
import json, torch, lstm_seq
from lstm_seq.kernels import ln_lstm, triton_ln_lstm
torch.manual_seed(0)
errs = {}
b, h = 3, 6  # h not a power of two: the masked lanes are exercised
z, p = torch.randn(b, 4 * h), torch.randn(b, 4 * h)
c = torch.randn(b, h)
g_hh, g_c, b_c = 1 + 0.1 * torch.randn(4 * h), 1 + 0.1 * torch.randn(h), 0.1 * torch.randn(h)
ft = ln_lstm.step_forward_torch(z, p, c, g_hh, g_c, b_c)
fk = triton_ln_lstm.step_forward(z, p, c, g_hh, g_c, b_c)
errs["forward"] = max((x - y).abs().max().item() for x, y in zip([ft[0], ft[1], *ft[2]], [fk[0], fk[1], *fk[2]]))
dh, dc = torch.randn(b, h), torch.randn(b, h)
bt = ln_lstm.step_backward_torch(dh, dc, c, ft[2], g_hh, g_c, b_c)
bk = triton_ln_lstm.step_backward(dh, dc, c, fk[2], g_hh, g_c, b_c)
errs["backward"] = max((x - y).abs().max().item() for x, y in zip(bt, bk))
ref = lstm_seq.LSTM(4, h, 2, bidirectional=True, layer_norm=True, backend="reference")
ours = lstm_seq.LSTM(4, h, 2, bidirectional=True, layer_norm=True, backend="ln_kernel")
ours.load_state_dict(ref.state_dict())
x = torch.randn(5, b, 4, requires_grad=True)
lengths = torch.tensor([5, 2, 4])
def run(m):
    out, (hn, cn) = m(x, lengths=lengths)
    return [out, hn, cn, *torch.autograd.grad(out.sum() + hn.sum(), [x, *m.parameters()])]
errs["module"] = max(((u - v).abs().max() / v.abs().max()).item() for u, v in zip(run(ours), run(ref)))
errs["used_triton"] = ln_lstm._use_triton(x)
print(json.dumps(errs))
"""


@pytest.mark.skipif(not triton_ln_lstm.available(), reason="triton is not installed")
def test_triton_kernels_in_the_interpreter_match_torch() -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    res = subprocess.run(
        [sys.executable, "-c", _INTERPRETED], env=env, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr[-3000:]
    errs = json.loads(res.stdout.strip().splitlines()[-1])
    assert errs.pop("used_triton") is True
    for name, err in errs.items():  # max abs error (steps), max error / max magnitude (module)
        assert err < 1e-5, (name, err)


@pytest.mark.skipif(not triton_ln_lstm.available(), reason="triton is not installed")
@pytest.mark.parametrize("kernel", ["_fwd_kernel", "_bwd_kernel"])
def test_triton_kernels_compile_for_a_gpu(
    kernel: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interpreter runs a kernel as Python and accepts what a GPU compile refuses (e.g. a
    module-level float read inside the kernel, or a name in an annotation): so compile both kernels
    for an sm_90 target too, which needs no GPU."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path))
    fn = getattr(triton_ln_lstm, kernel)
    signature = {name: "*fp32" for name in fn.arg_names if name.endswith("_ptr")}
    signature |= {"H": "constexpr", "BLOCK": "constexpr"}
    src = ASTSource(fn=fn, signature=signature, constexprs={"H": 6, "BLOCK": 8})
    compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32))
    assert "ttir" in compiled.asm
