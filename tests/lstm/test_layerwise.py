"""The layerwise backend's pieces and the dispatch rule of ``auto`` (its numbers against nn.LSTM are
in the equivalence grid, gradcheck and lengths tests)."""

from __future__ import annotations

import pytest
import torch

import lstm_seq
from lstm_seq.kernels import triton_ln_lstm
from lstm_seq.layerwise import pad_features, reverse_index, reverse_within_lengths
from lstm_seq.lstm import AUTO_LAYER_NORM_CPU, choose_backend

from ._util import assert_close, twins

LN_ON_GPU = "ln_kernel" if triton_ln_lstm.available() else "reference"


def test_reverse_within_lengths_reverses_each_sequence_and_keeps_padding() -> None:
    x = torch.arange(5.0)[:, None, None].expand(5, 3, 1).clone()  # x[t, b] = t
    lengths = torch.tensor([5, 2, 3])
    r = reverse_within_lengths(x, lengths)[..., 0]
    assert r[:, 0].tolist() == [4, 3, 2, 1, 0]
    assert r[:, 1].tolist() == [1, 0, 2, 3, 4]
    assert r[:, 2].tolist() == [2, 1, 0, 3, 4]
    assert torch.equal(reverse_within_lengths(r[..., None], lengths), x)
    assert torch.equal(reverse_within_lengths(x, None)[..., 0][:, 0], torch.tensor([4.0, 3, 2, 1, 0]))
    index = reverse_index(lengths, x.shape[0], x.device)  # one index serves both ways (an involution)
    assert torch.equal(reverse_within_lengths(x, lengths, index), reverse_within_lengths(x, lengths))
    assert torch.equal(index.gather(0, index), torch.arange(x.shape[0])[:, None].expand_as(index))


def test_feature_padding_changes_nothing() -> None:
    """Layer 0's input padded to a multiple of 8 (128 on a GPU): same outputs and gradients."""
    _, ours = twins("layerwise", 5, 4, num_layers=2, bidirectional=True)
    x = torch.randn(7, 3, 5, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([7, 4, 1])
    out_ref, (h_ref, c_ref) = ours(x, lengths=lengths)
    g_ref = torch.autograd.grad(out_ref.sum() + h_ref.sum(), [x, *ours.parameters()])
    blocks, cfg = ours.all_weights, ours._fused_config()
    h0 = torch.zeros(4, 3, 4, dtype=torch.float64)
    out, h, c = lstm_seq.layerwise.run_layers(x, lengths, h0, h0.clone(), blocks, cfg, pad_input_to=8)
    g = torch.autograd.grad(out.sum() + h.sum(), [x, *ours.parameters()])
    for a, b in ((out, out_ref), (h, h_ref), (c, c_ref), *zip(g, g_ref, strict=True)):
        assert_close(a, b)
    xp, wp = pad_features(x, blocks[0][0], 8)
    assert xp.shape == (7, 3, 8) and wp.shape == (16, 8) and torch.equal(wp[:, 5:], torch.zeros(16, 3))
    assert pad_features(x, blocks[0][0], 5)[0] is x


@pytest.mark.parametrize(
    ("kw", "want"),
    [
        (
            {"device_type": "cuda", "half_precision": True, "num_layers": 4, "bidirectional": True},
            "layerwise",
        ),
        (
            {"device_type": "cuda", "half_precision": True, "num_layers": 2, "bidirectional": False},
            "layerwise",
        ),
        ({"device_type": "cuda", "half_precision": True, "num_layers": 1, "bidirectional": False}, "fused"),
        # cuDNN's persistent small-H algorithm already runs the whole stack in one call: no split
        (
            {
                "device_type": "cuda",
                "half_precision": True,
                "num_layers": 2,
                "bidirectional": True,
                "hidden_size": 128,
            },
            "fused",
        ),
        (
            {
                "device_type": "cuda",
                "half_precision": True,
                "num_layers": 2,
                "bidirectional": True,
                "hidden_size": 256,
            },
            "layerwise",
        ),
        # packed input (lengths) runs no persistent kernel either way: one call
        (
            {
                "device_type": "cuda",
                "half_precision": True,
                "num_layers": 4,
                "bidirectional": True,
                "has_lengths": True,
            },
            "fused",
        ),
        ({"device_type": "cuda", "half_precision": False, "num_layers": 4, "bidirectional": True}, "fused"),
        ({"device_type": "cpu", "half_precision": True, "num_layers": 4, "bidirectional": True}, "fused"),
        ({"device_type": "cuda", "half_precision": True, "num_layers": 4, "proj_size": 3}, "fused"),
        ({"device_type": "cuda", "half_precision": True, "layer_norm": True}, LN_ON_GPU),
        ({"device_type": "cpu", "half_precision": False, "layer_norm": True}, AUTO_LAYER_NORM_CPU["fwd+bwd"]),
        (
            {"device_type": "cpu", "half_precision": False, "layer_norm": True, "records_grad": False},
            AUTO_LAYER_NORM_CPU["fwd"],
        ),
        ({"device_type": "cpu", "half_precision": False, "layer_norm": True, "proj_size": 2}, "reference"),
        ({"device_type": "cuda", "half_precision": True, "layer_norm": True, "proj_size": 2}, "reference"),
    ],
)
def test_auto_dispatch_rule(kw: dict, want: str) -> None:
    args = {"layer_norm": False, "num_layers": 1, "bidirectional": False, "proj_size": 0} | kw
    assert choose_backend("auto", **args) == want
    assert choose_backend("fused", **(args | {"layer_norm": False})) == "fused"


def test_layerwise_rejects_layer_norm_and_is_reported_by_plan() -> None:
    with pytest.raises(ValueError, match="layerwise"):
        lstm_seq.LSTM(3, 4, layer_norm=True, backend="layerwise")
    m = lstm_seq.LSTM(3, 4, num_layers=2, backend="layerwise")
    assert m.plan(torch.zeros(2, 1, 3)) == "layerwise"
    assert m.plan(torch.zeros(2, 1, 3), lengths=torch.tensor([2])) == "layerwise"  # asked for: kept
    assert lstm_seq.LSTM(3, 4, num_layers=2, bidirectional=True).plan(torch.zeros(2, 1, 3)) == "fused"


def test_layerwise_dropout_between_layers_in_training_only() -> None:
    torch.manual_seed(0)
    m = lstm_seq.LSTM(3, 8, num_layers=2, dropout=0.5, backend="layerwise")
    x = torch.randn(5, 2, 3)
    m.eval()
    assert torch.equal(m(x)[0], m(x)[0])
    m.train()
    assert not torch.equal(m(x)[0], m(x)[0])
