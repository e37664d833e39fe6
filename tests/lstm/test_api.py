"""Constructor checks, error messages, dropout, dispatch and repr."""

from __future__ import annotations

import pytest
import torch

import lstm_seq


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"hidden_size": 0}, "hidden_size must be a positive int"),
        ({"num_layers": 0}, "num_layers must be a positive int"),
        ({"dropout": 1.5}, r"dropout must be a number in \[0, 1\]"),
        ({"proj_size": 4}, "proj_size"),
        ({"backend": "cudnn"}, "backend must be one of"),
    ],
)
def test_constructor_errors(kw: dict, match: str) -> None:
    args = {"input_size": 3, "hidden_size": 4, **kw}
    with pytest.raises(ValueError, match=match):
        lstm_seq.LSTM(**args)


def test_forward_errors_name_the_problem() -> None:
    m = lstm_seq.LSTM(3, 4, num_layers=2)
    with pytest.raises(RuntimeError, match="Expected 3, got 5"):
        m(torch.randn(2, 1, 5))
    with pytest.raises(RuntimeError, match=r"expected h_0 of size \(2, 1, 4\)"):
        m(torch.randn(2, 1, 3), (torch.zeros(1, 1, 4), torch.zeros(2, 1, 4)))
    with pytest.raises(RuntimeError, match="dtype"):
        m(torch.randn(2, 1, 3), (torch.zeros(2, 1, 4, dtype=torch.float64), torch.zeros(2, 1, 4)))
    with pytest.raises(ValueError, match=r"2 .* or 3 dimensions"):
        m(torch.randn(2, 1, 1, 3))


@pytest.mark.parametrize("backend", ["reference", "fused", "layerwise"])
def test_autocast_takes_a_state_of_another_dtype_like_nn_lstm(backend: str) -> None:
    """Under autocast nn.LSTM accepts an fp32 input with a bf16 state (a captioner's initial state comes
    from a Linear, which autocast runs in bf16; its word embeddings stay fp32); so must the drop-in, in
    forward and in step. Outside autocast the mismatch is still an error."""
    torch.manual_seed(0)
    m = lstm_seq.LSTM(3, 4, num_layers=2, batch_first=True, backend=backend)
    twin = torch.nn.LSTM(3, 4, num_layers=2, batch_first=True)
    twin.load_state_dict(m.state_dict())
    x = torch.randn(2, 5, 3)
    state = (torch.randn(2, 2, 4).bfloat16(), torch.randn(2, 2, 4).bfloat16())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        try:
            ref, (h_ref, c_ref) = twin(x, state)
        except RuntimeError as err:  # oneDNN builds its bf16 LSTM only on CPUs with bf16 instructions
            pytest.skip(f"nn.LSTM itself cannot run under CPU bf16 autocast here: {err}")
        out, (h, c) = m(x, state)
        h_t, _ = m.step(x[:, 0], state)
    assert out.shape == ref.shape == (2, 5, 4) and h.shape == c.shape == (2, 2, 4) and h_t.shape == (2, 4)
    # fused/layerwise forward calls nn.LSTM's own kernel: equal; the reference loop's bf16 matmuls round
    # differently (about 2e-3 here, against 0.5 for an LSTM with other weights). step() runs
    # torch.lstm_cell, which CPU autocast leaves in fp32: it differs from nn.LSTM's bf16 output by
    # that output's rounding (7e-4 here), so it gets the bf16 tolerance on every backend
    tol = 1e-2 if backend == "reference" else 0.0
    for got, want in ((out, ref), (h, h_ref), (c, c_ref)):
        torch.testing.assert_close(got.float(), want.float(), rtol=0.0, atol=tol)
    torch.testing.assert_close(h_t.float(), ref[:, 0].float(), rtol=0.0, atol=1e-2)
    with pytest.raises(RuntimeError, match=r"h_0 has dtype torch\.bfloat16"):
        m(x, state)


def test_dropout_between_layers_in_training_only() -> None:
    torch.manual_seed(0)
    m = lstm_seq.LSTM(3, 16, num_layers=2, dropout=0.5)
    x = torch.randn(5, 2, 3)
    m.eval()
    assert torch.equal(m(x)[0], m(x)[0])
    m.train()
    assert not torch.equal(m(x)[0], m(x)[0])
    with pytest.warns(UserWarning, match="num_layers=1"):
        lstm_seq.LSTM(3, 4, dropout=0.2)


def test_plan_and_repr() -> None:
    x = torch.zeros(2, 1, 3)
    assert lstm_seq.LSTM(3, 4).plan(x) == "fused"
    assert lstm_seq.LSTM(3, 4, backend="reference").plan(x) == "reference"
    r = repr(lstm_seq.LSTM(3, 4, num_layers=2, bidirectional=True, layer_norm=True))
    assert "LSTM(3, 4, num_layers=2, bidirectional=True, layer_norm=True)" in r
