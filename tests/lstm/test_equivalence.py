"""Every backend of lstm_seq.LSTM against torch.nn.LSTM in float64: outputs, final states and every
gradient, over a grid of options."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lstm_seq

from ._util import assert_close, twins

T, B, I, H = 6, 3, 4, 5
GRID = list(
    itertools.product(
        ["reference", "fused", "layerwise"],  # backend
        [1, 2, 3],  # num_layers
        [False, True],  # bidirectional
        [False, True],  # batch_first
        [0, 3],  # proj_size
        ["tensor", "packed", "lengths"],  # input kind
        [False, True],  # initial state given
    )
)


def _id(case: tuple) -> str:
    backend, layers, bidir, bf, proj, kind, hx = case
    return f"{backend}-L{layers}-{'bi' if bidir else 'uni'}-{'bf' if bf else 'tf'}-p{proj}-{kind}-{'hx' if hx else 'nohx'}"


@pytest.mark.parametrize("case", GRID, ids=[_id(c) for c in GRID])
def test_matches_nn_lstm(case: tuple) -> None:
    backend, layers, bidir, batch_first, proj, kind, with_hx = case
    ref, ours = twins(
        backend, I, H, num_layers=layers, bidirectional=bidir, batch_first=batch_first, proj_size=proj
    )
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(B, T, I, dtype=torch.float64, generator=gen)
    if not batch_first:
        x = x.transpose(0, 1).contiguous()
    x_ref = x.clone().requires_grad_(True)
    x_ours = x.clone().requires_grad_(True)
    n = layers * (2 if bidir else 1)
    hx = None
    if with_hx:
        hx = (
            torch.randn(n, B, proj or H, dtype=torch.float64, generator=gen),
            torch.randn(n, B, H, dtype=torch.float64, generator=gen),
        )
    lengths = torch.tensor([T, 2, 4])

    if kind == "tensor":
        out_ref, (h_ref, c_ref) = ref(x_ref, hx)
        out, (h, c) = ours(x_ours, hx)
    elif kind == "packed":
        pack_ref = pack_padded_sequence(x_ref, lengths, batch_first=batch_first, enforce_sorted=False)
        pack_ours = pack_padded_sequence(x_ours, lengths, batch_first=batch_first, enforce_sorted=False)
        out_ref, (h_ref, c_ref) = ref(pack_ref, hx)
        out, (h, c) = ours(pack_ours, hx)
        assert isinstance(out, type(out_ref))
        assert torch.equal(out.batch_sizes, out_ref.batch_sizes)
        out_ref, out = out_ref.data, out.data
    else:  # padded batch with lengths=: compare with nn.LSTM on the packed batch
        pack_ref = pack_padded_sequence(x_ref, lengths, batch_first=batch_first, enforce_sorted=False)
        packed_out, (h_ref, c_ref) = ref(pack_ref, hx)
        out_ref, _ = pad_packed_sequence(packed_out, batch_first=batch_first, total_length=T)
        out, (h, c) = ours(x_ours, hx, lengths=lengths)

    assert out.shape == out_ref.shape and out.dtype == out_ref.dtype
    assert_close(out, out_ref, "output")
    assert_close(h, h_ref, "h_n")
    assert_close(c, c_ref, "c_n")

    # One scalar that depends on every output and state, with random weights.
    w = torch.randn(out.shape, dtype=torch.float64, generator=gen)
    (out_ref * w).sum().add(h_ref.square().sum()).add(c_ref.sin().sum()).backward()
    (out * w).sum().add(h.square().sum()).add(c.sin().sum()).backward()
    assert_close(x_ours.grad, x_ref.grad, "input grad")
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, ref_params[name].grad, f"grad of {name}")


@pytest.mark.parametrize("backend", ["reference", "fused", "layerwise"])
def test_no_bias_and_unbatched(backend: str) -> None:
    ref, ours = twins(backend, bias=False, num_layers=2, bidirectional=True)
    assert not any("bias" in n for n, _ in ours.named_parameters())
    x = torch.randn(T, I, dtype=torch.float64)
    hx = (torch.randn(4, H, dtype=torch.float64), torch.randn(4, H, dtype=torch.float64))
    out_ref, (h_ref, c_ref) = ref(x, hx)
    out, (h, c) = ours(x, hx)
    assert out.shape == (T, 2 * H) and h.shape == (4, H) and c.shape == (4, H)
    assert_close(out, out_ref, "output")
    assert_close(h, h_ref, "h_n")
    assert_close(c, c_ref, "c_n")


def test_state_dict_round_trip_both_ways() -> None:
    kw = {"num_layers": 2, "bidirectional": True, "proj_size": 2}
    ours = lstm_seq.LSTM(I, H, **kw)
    ref = nn.LSTM(I, H, **kw)
    assert list(ours.state_dict()) == list(ref.state_dict())
    for name, p in ours.state_dict().items():
        assert p.shape == ref.state_dict()[name].shape, name
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(T, B, I)
    torch.testing.assert_close(ref(x)[0], ours(x)[0], rtol=1e-5, atol=1e-6)


def test_seeded_initialisation_equals_nn_lstm() -> None:
    torch.manual_seed(3)
    ref = nn.LSTM(I, H, num_layers=2, bidirectional=True)
    torch.manual_seed(3)
    ours = lstm_seq.LSTM(I, H, num_layers=2, bidirectional=True)
    for (n1, p1), (n2, p2) in zip(ref.named_parameters(), ours.named_parameters(), strict=True):
        assert n1 == n2
        assert torch.equal(p1, p2), n1


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dtypes_follow_the_input(dtype: torch.dtype) -> None:
    ours = lstm_seq.LSTM(I, H, num_layers=2).to(dtype)
    out, (h, c) = ours(torch.randn(T, B, I, dtype=dtype))
    assert out.dtype == h.dtype == c.dtype == dtype
