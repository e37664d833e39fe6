"""torch.autograd.gradcheck on tiny cases of each backend, LayerNorm and padded lengths included."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

import lstm_seq

CASES = [
    ("reference", {}),
    ("fused", {}),
    ("reference", {"bidirectional": True, "proj_size": 2}),
    ("fused", {"bidirectional": True, "proj_size": 2}),
    ("layerwise", {"bidirectional": True}),
    ("reference", {"layer_norm": True}),
    ("ln_kernel", {"layer_norm": True, "bidirectional": True}),
    ("auto", {"layer_norm": True, "bidirectional": True}),
]


@pytest.mark.parametrize(("backend", "kw"), CASES, ids=[f"{b}-{sorted(k)}" for b, k in CASES])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_gradcheck(backend: str, kw: dict, with_lengths: bool) -> None:
    torch.manual_seed(0)
    m = lstm_seq.LSTM(3, 3, num_layers=2, backend=backend, **kw).double()
    params = list(m.parameters())
    names = [n for n, _ in m.named_parameters()]
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([4, 2]) if with_lengths else None

    def f(x: torch.Tensor, *ps: torch.Tensor) -> tuple[torch.Tensor, ...]:
        state = dict(zip(names, ps, strict=True))
        out, (h, c) = torch.func.functional_call(m, state, (x,), {"lengths": lengths})
        return out, h, c

    assert gradcheck(f, (x, *params), eps=1e-6, atol=1e-7, rtol=1e-5)
