"""The LayerNorm LSTM against an independent, explicit implementation of its documented equations."""

from __future__ import annotations

import pytest
import torch

import lstm_seq
from lstm_seq.lstm import AUTO_LAYER_NORM_CPU

from ._util import assert_close


def _ln(z: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    mean = z.mean(-1, keepdim=True)
    var = ((z - mean) ** 2).mean(-1, keepdim=True)  # biased variance, as LayerNorm
    y = gain * (z - mean) / torch.sqrt(var + 1e-5)
    return y if bias is None else y + bias


def _explicit(m: lstm_seq.LSTM, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One layer, one direction, written out gate by gate from the module docstring."""
    p = dict(m.named_parameters())
    H = m.hidden_size
    W_ih, W_hh, b_ih, b_hh = p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"]
    h = torch.zeros(x.shape[1], H, dtype=x.dtype)
    c = torch.zeros_like(h)
    outs = []
    for t in range(x.shape[0]):
        a = _ln(x[t] @ W_ih.T, p["ln_ih_weight_l0"], None) + b_ih
        a = a + _ln(h @ W_hh.T, p["ln_hh_weight_l0"], None) + b_hh
        i = torch.sigmoid(a[:, :H])
        f = torch.sigmoid(a[:, H : 2 * H])
        g = torch.tanh(a[:, 2 * H : 3 * H])
        o = torch.sigmoid(a[:, 3 * H :])
        c = f * c + i * g
        h = o * torch.tanh(_ln(c, p["ln_c_weight_l0"], p["ln_c_bias_l0"]))
        outs.append(h)
    return torch.stack(outs), h, c


@pytest.mark.parametrize("backend", ["reference", "ln_kernel"])
def test_layer_norm_matches_explicit_equations(backend: str) -> None:
    torch.manual_seed(0)
    m = lstm_seq.LSTM(3, 4, layer_norm=True, backend=backend).double()  # type: ignore[arg-type]
    with torch.no_grad():  # move gains and biases off their initial 1/0 so they matter
        for name, prm in m.named_parameters():
            if name.startswith("ln_"):
                prm.add_(0.3 * torch.randn_like(prm))
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    out, (h, c) = m(x)
    out_e, h_e, c_e = _explicit(m, x)
    assert_close(out, out_e, "output")
    assert_close(h[0], h_e, "h_n")
    assert_close(c[0], c_e, "c_n (the un-normalised cell)")


def test_layer_norm_parameters_and_dispatch() -> None:
    m = lstm_seq.LSTM(3, 4, num_layers=2, bidirectional=True, layer_norm=True)
    names = {n for n, _ in m.named_parameters()}
    for layer in range(2):
        for sfx in ("", "_reverse"):
            for stem, size in (
                ("ln_ih_weight", 16),
                ("ln_hh_weight", 16),
                ("ln_c_weight", 4),
                ("ln_c_bias", 4),
            ):
                name = f"{stem}_l{layer}{sfx}"
                assert name in names
                assert getattr(m, name).shape == (size,)
    assert torch.all(m.ln_ih_weight_l0 == 1) and torch.all(m.ln_c_bias_l1_reverse == 0)
    with (
        torch.no_grad()
    ):  # the CPU rule (AUTO_LAYER_NORM_CPU) is checked against its measurement in test_ln_kernel
        assert m.plan(torch.zeros(2, 1, 3)) == AUTO_LAYER_NORM_CPU["fwd"]
    assert m.plan(torch.zeros(2, 1, 3)) == AUTO_LAYER_NORM_CPU["fwd+bwd"]
    with pytest.raises(ValueError, match="no LayerNorm kernel"):
        lstm_seq.LSTM(3, 4, layer_norm=True, backend="fused")


def test_layer_norm_is_scale_invariant_in_the_input() -> None:
    """A property of the documented equations: the input pre-activation is normalised, so scaling
    x by a positive constant leaves every output unchanged (once its variance dwarfs LayerNorm's
    epsilon)."""
    torch.manual_seed(2)
    m = lstm_seq.LSTM(3, 8, layer_norm=True).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(m(500 * x)[0], m(50 * x)[0], rtol=1e-5, atol=1e-6)
    plain = lstm_seq.LSTM(3, 8).double()
    assert not torch.allclose(plain(500 * x)[0], plain(50 * x)[0], atol=1e-3)
