"""The same contracts on a CUDA device (skipped without one)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lstm_seq
from lstm_seq.cudnn_weights import is_flat

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
    _, ours = twins("auto", 320, 256, num_layers=2, bidirectional=True)
    ours = ours.float().cuda()
    x = torch.randn(40, 8, 320, device="cuda")
    lengths = torch.tensor([40, 17, 33, 40, 5, 40, 28, 9])
    with torch.autocast("cuda", dtype=torch.bfloat16):
        assert ours.plan(x) == "layerwise"  # H 256: one call per layer and direction
        assert ours.plan(x, lengths=lengths) == "fused"  # packed: one call
        got, (h, _) = ours(x)
        ours.backend = "fused"
        want, (h_want, _) = ours(x)
        ours.backend = "layerwise"  # with lengths too, when asked for
        got_len, (h_len, _) = ours(x, lengths=lengths)
        ours.backend = "fused"
        want_len, (h_want_len, _) = ours(x, lengths=lengths)
    for a, b in ((got, want), (h, h_want), (got_len, want_len), (h_len, h_want_len)):
        torch.testing.assert_close(a.float(), b.float(), rtol=0.02, atol=0.02)


def _ref_run(ref: torch.nn.LSTM, x: torch.Tensor, lengths: torch.Tensor | None) -> tuple:
    """nn.LSTM on the padded batch (packed when there are lengths), its output padded back."""
    if lengths is None:
        return ref(x)
    out, state = ref(pack_padded_sequence(x, lengths, enforce_sorted=False))
    return pad_packed_sequence(out, total_length=x.shape[0])[0], state


@pytest.mark.parametrize("backend", ["fused", "layerwise", "auto"])
def test_cudnn_reads_the_weights_without_copying_them_after_to_half_and_under_autocast(backend: str) -> None:
    """cuDNN's "weights are not part of single contiguous chunk of memory" warning (a copy of every weight in
    every call) is an error here: in fp32, under bf16 autocast, after .half() and back."""
    ref, ours = twins(backend, 160, 128, num_layers=2, bidirectional=True)
    ref, ours = ref.float().cuda(), ours.float().cuda()
    assert is_flat(ours._flat_weights)  # flattened by .cuda(), like nn.LSTM
    x = torch.randn(30, 8, 160, device="cuda", requires_grad=True)
    lengths = torch.tensor([30, 12, 25, 30, 3, 30, 17, 9])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*single contiguous chunk.*")
        for lens in (None, lengths):
            if backend != "layerwise":  # fp32 layerwise copies per block: only half precision pays for that
                out, (h, c) = ours(x, lengths=lens)
                (out.sum() + h.sum()).backward()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out, (h, c) = ours(x, lengths=lens)
                want, (h_want, c_want) = _ref_run(ref, x, lens)
            (out.float().sum() + h.float().sum()).backward()
            for a, b in ((out, want), (h, h_want), (c, c_want)):  # both compute in fp16 through cuDNN
                torch.testing.assert_close(a.float(), b.float(), rtol=1e-2, atol=1e-2)
        ours.half()
        assert is_flat(ours._flat_weights)
        ours(x.detach().half())
        ours.float().to("cuda")
        assert is_flat(ours._flat_weights)
        ours(x)


def test_step_uses_the_fused_cell_and_matches_a_one_step_forward() -> None:
    torch.manual_seed(0)
    m = lstm_seq.LSTM(48, 64, num_layers=2).cuda().double()
    x = torch.randn(1, 5, 48, device="cuda", dtype=torch.float64)
    state = (
        torch.randn(2, 5, 64, device="cuda", dtype=torch.float64),
        torch.randn(2, 5, 64, device="cuda", dtype=torch.float64),
    )
    want, (h_want, c_want) = m(x, state)
    got, (h, c) = m.step(x[0], state)
    for a, b in ((got, want[0]), (h, h_want), (c, c_want)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    m.float()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        got, _ = m.step(x[0].float(), (state[0].float(), state[1].float()))
    torch.testing.assert_close(got.float(), want[0].float(), rtol=0.03, atol=0.03)


def test_layer_norm_auto_uses_the_triton_kernel_and_matches_reference() -> None:
    """The Triton kernel in fp32 against a float64 truth (the reference loop in float64), each quantity's
    error relative to its own scale: gradients reach ~1e3 here, where an element-wise 1e-4 is below what
    fp32 itself holds (the fp32 reference loop is 5e-3 off the truth there). The kernel must be as close to
    the truth as fp32 arithmetic is: within 1e-5 of the scale, or 4x the fp32 reference loop's own error."""
    torch.manual_seed(0)
    truth = (
        lstm_seq.LSTM(64, 128, 2, bidirectional=True, layer_norm=True, backend="reference").cuda().double()
    )
    ref = lstm_seq.LSTM(64, 128, 2, bidirectional=True, layer_norm=True, backend="reference").cuda()
    ours = lstm_seq.LSTM(64, 128, 2, bidirectional=True, layer_norm=True).cuda()
    ref.load_state_dict(truth.state_dict())
    ours.load_state_dict(truth.state_dict())
    x = torch.randn(30, 8, 64, device="cuda", dtype=torch.float64)
    lengths = torch.tensor([30, 12, 25, 30, 3, 30, 17, 9])
    assert ours.plan(x.float().requires_grad_()) == "ln_kernel"
    outs = []
    for m, dtype in ((truth, torch.float64), (ours, torch.float32), (ref, torch.float32)):
        xi = x.to(dtype).requires_grad_()
        out, (h, c) = m(xi, lengths=lengths)
        outs.append([out, h, c, *torch.autograd.grad(out.sum() + h.sum(), [xi, *m.parameters()])])
    for t, a, b in zip(*outs, strict=True):
        scale = t.abs().max().clamp_min(1e-12)
        err_ours = ((a.double() - t).abs().max() / scale).item()
        err_ref = ((b.double() - t).abs().max() / scale).item()
        assert err_ours <= max(1e-5, 4 * err_ref), (err_ours, err_ref)
