"""Padded batches with lengths=, state carry across chunks, and step() against forward()."""

from __future__ import annotations

import pytest
import torch

import lstm_seq

from ._util import assert_close

I, H = 3, 4
CONFIGS = [
    ("reference", {}),
    ("fused", {}),
    ("reference", {"layer_norm": True}),
    ("ln_kernel", {"layer_norm": True}),
    ("fused", {"proj_size": 2}),
    ("layerwise", {}),
]
IDS = [f"{b}-{'-'.join(sorted(k)) or 'plain'}" for b, k in CONFIGS]


def _model(backend: str, **kw: object) -> lstm_seq.LSTM:
    torch.manual_seed(0)
    return lstm_seq.LSTM(I, H, backend=backend, **kw).double()  # type: ignore[arg-type]


@pytest.mark.parametrize(("backend", "kw"), CONFIGS, ids=IDS)
def test_padding_invariance_and_single_sequences(backend: str, kw: dict) -> None:
    """More padding never changes valid outputs or final states, whatever the pad values; each
    sequence of a padded batch equals the same sequence run alone."""
    m = _model(backend, num_layers=2, bidirectional=True, **kw)
    torch.manual_seed(1)
    lengths = torch.tensor([5, 2, 3])
    x = torch.randn(5, 3, I, dtype=torch.float64)
    out, (h, c) = m(x, lengths=lengths)
    x_more = torch.cat([x, 100 * torch.randn(4, 3, I, dtype=torch.float64)])  # garbage padding
    for b, n in enumerate(lengths.tolist()):
        x_more[n:, b] = 77.0
    out_more, (h_more, c_more) = m(x_more, lengths=lengths)
    assert_close(out_more[:5], out, "outputs with more padding")
    assert torch.count_nonzero(out_more[5:]) == 0
    assert_close(h_more, h, "h_n with more padding")
    assert_close(c_more, c, "c_n with more padding")
    for b, n in enumerate(lengths.tolist()):
        assert torch.count_nonzero(out[n:, b]) == 0, "outputs past the length must be zero"
        alone, (h1, c1) = m(x[:n, b : b + 1])
        assert_close(out[:n, b : b + 1], alone, f"sequence {b} output")
        assert_close(h[:, b : b + 1], h1, f"sequence {b} h_n")
        assert_close(c[:, b : b + 1], c1, f"sequence {b} c_n")


@pytest.mark.parametrize(("backend", "kw"), CONFIGS, ids=IDS)
def test_chunked_equals_whole(backend: str, kw: dict) -> None:
    m = _model(backend, num_layers=3, **kw)
    x = torch.randn(11, 2, I, dtype=torch.float64)
    whole, (h_w, c_w) = m(x)
    state = None
    pieces = []
    for chunk in torch.split(x, [4, 1, 6]):
        y, state = m(chunk, state)
        pieces.append(y)
    assert_close(torch.cat(pieces), whole, "chunked output")
    assert state is not None
    assert_close(state[0], h_w, "h_n")
    assert_close(state[1], c_w, "c_n")


@pytest.mark.parametrize(("backend", "kw"), CONFIGS, ids=IDS)
def test_step_loop_equals_forward(backend: str, kw: dict) -> None:
    m = _model(backend, num_layers=2, **kw)
    x = torch.randn(7, 3, I, dtype=torch.float64)
    h0 = torch.randn(2, 3, kw.get("proj_size") or H, dtype=torch.float64)
    c0 = torch.randn(2, 3, H, dtype=torch.float64)
    whole, (h_w, c_w) = m(x, (h0, c0))
    state = (h0, c0)
    for t in range(7):
        y, state = m.step(x[t], state)
        assert_close(y, whole[t], f"step {t}")
    assert_close(state[0], h_w, "h after steps")
    assert_close(state[1], c_w, "c after steps")
    y0, (h1, _) = m.step(x[0])  # zero state by default
    assert_close(y0, m(x[:1])[0][0], "step from zeros")
    assert h1.shape == (2, 3, kw.get("proj_size") or H)


def test_step_rejects_bidirectional_and_bad_shapes() -> None:
    with pytest.raises(ValueError, match="unidirectional"):
        lstm_seq.LSTM(I, H, bidirectional=True).step(torch.randn(2, I))
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        lstm_seq.LSTM(I, H).step(torch.randn(5, 2, I))


def test_lengths_batch_first_and_device_tensor_lengths() -> None:
    m = _model("auto", batch_first=True, bidirectional=True)
    x = torch.randn(2, 6, I, dtype=torch.float64)
    out, (h, _) = m(x, lengths=[6, 3])
    alone, (h1, _) = m(x[1:, :3])
    assert_close(out[1:, :3], alone, "batch_first lengths")
    assert_close(h[:, 1:], h1, "batch_first h_n")
    assert torch.count_nonzero(out[1, 3:]) == 0


@pytest.mark.parametrize(
    ("lengths", "error", "match"),
    [
        ([6, 0], ValueError, r"in \[1, 6\]"),
        ([7, 2], ValueError, r"in \[1, 6\]"),
        ([6], ValueError, r"shape \(2,\)"),
        (torch.tensor([2.0, 3.0]), TypeError, "integers"),
    ],
)
def test_bad_lengths_are_rejected(lengths: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        lstm_seq.LSTM(I, H)(torch.randn(6, 2, I), lengths=lengths)
