"""The same contracts on a CUDA device (skipped without one)."""

from __future__ import annotations

import pytest
import torch

import lstm_seq

from ._util import twins

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("backend", ["reference", "fused", "layerwise", "auto"])
def test_cuda_matches_nn_lstm_float64_with_lengths(backend: str) -> None:
    ref, ours = twins(backend, 8, 16, num_layers=2, bidirectional=True)
    ref, ours = ref.cuda(), ours.cuda()
    x = torch.randn(12, 4, 8, dtype=torch.float64, device="cuda", requires_grad=True)
    lengths = torch.tensor([12, 3, 7, 12], device="cuda")
    out, (h, c) = ours(x, lengths=lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
    out_ref, (h_ref, c_ref) = ref(packed)
    out_ref = torch.nn.utils.rnn.pad_packed_sequence(out_ref, total_length=12)[0]
    for a, b in ((out, out_ref), (h, h_ref), (c, c_ref)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_cuda_bf16_autocast_close_to_fp32() -> None:
    _, ours = twins("auto", 64, 128, num_layers=2)
    ours = ours.float().cuda()
    x = torch.randn(50, 8, 64, device="cuda")
    expected = ours(x)[0]
    with torch.autocast("cuda", dtype=torch.bfloat16):
        got = ours(x)[0]
    torch.testing.assert_close(got.float(), expected, rtol=0.05, atol=0.05)
    got.float().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in ours.parameters())


def test_auto_splits_layers_under_autocast_and_matches_fused() -> None:
    _, ours = twins("auto", 320, 128, num_layers=2, bidirectional=True)
    ours = ours.float().cuda()
    x = torch.randn(40, 8, 320, device="cuda")
    lengths = torch.tensor([40, 17, 33, 40, 5, 40, 28, 9])
    with torch.autocast("cuda", dtype=torch.bfloat16):
        assert ours.plan(x) == "layerwise"
        got, (h, _) = ours(x, lengths=lengths)
        ours.backend = "fused"
        want, (h_want, _) = ours(x, lengths=lengths)
    torch.testing.assert_close(got.float(), want.float(), rtol=0.02, atol=0.02)
    torch.testing.assert_close(h.float(), h_want.float(), rtol=0.02, atol=0.02)


def test_layer_norm_auto_uses_the_triton_kernel_and_matches_reference() -> None:
    torch.manual_seed(0)
    ref = lstm_seq.LSTM(64, 128, 2, bidirectional=True, layer_norm=True, backend="reference").cuda()
    ours = lstm_seq.LSTM(64, 128, 2, bidirectional=True, layer_norm=True).cuda()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(30, 8, 64, device="cuda", requires_grad=True)
    lengths = torch.tensor([30, 12, 25, 30, 3, 30, 17, 9])
    assert ours.plan(x) == "ln_kernel"
    outs = []
    for m in (ours, ref):
        out, (h, c) = m(x, lengths=lengths)
        outs.append([out, h, c, *torch.autograd.grad(out.sum() + h.sum(), [x, *m.parameters()])])
    for a, b in zip(*outs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
