"""The cuDNN weight buffer helpers on the CPU: the cast copy's values, gaps and gradients for a given layout.
(cuDNN's own layout and the no-copy calls are checked on a GPU: tests/lstm/test_gpu.py.)"""

from __future__ import annotations

import torch

import lstm_seq
from lstm_seq.cudnn_weights import FlatConfig, cast_flat, cudnn_usable, is_flat

CFG = FlatConfig(
    input_size=3, hidden_size=2, proj_size=0, num_layers=1, bidirectional=False, weights_per_block=4
)


def test_cast_flat_places_each_weight_at_its_offset_with_zero_gaps_and_passes_gradients_back() -> None:
    torch.manual_seed(0)
    m = lstm_seq.LSTM(3, 2)
    weights = m._flat_weights  # w_ih (8, 3), w_hh (8, 2), b_ih (8,), b_hh (8,)
    # a layout that is not the plain concatenation: another order and padding between and after the weights
    offsets, total = (40, 0, 20, 30), 70
    views = cast_flat(weights, torch.float64, CFG, where=(offsets, total))
    flat = views[0].untyped_storage()
    assert all(v.untyped_storage().data_ptr() == flat.data_ptr() for v in views)
    assert is_flat(views) and not is_flat(weights)
    buffer = torch.empty(0, dtype=torch.float64).set_(flat)
    assert buffer.numel() == total
    for v, w, off in zip(views, weights, offsets, strict=True):
        assert v.dtype == torch.float64 and v.shape == w.shape and v.storage_offset() == off
        assert torch.equal(v, w.double())
    used = torch.zeros(total, dtype=torch.bool)
    for w, off in zip(weights, offsets, strict=True):
        used[off : off + w.numel()] = True
    assert torch.equal(buffer[~used], torch.zeros(int((~used).sum()), dtype=torch.float64))
    scale = [torch.randn(w.shape, dtype=torch.float64) for w in weights]
    torch.autograd.backward([(s * v).sum() for s, v in zip(scale, views, strict=True)])
    for s, w in zip(scale, weights, strict=True):
        torch.testing.assert_close(w.grad, s.float())


def test_off_cuda_flatten_parameters_leaves_the_weights_where_they_are() -> None:
    m = lstm_seq.LSTM(3, 4, num_layers=2, bidirectional=True)
    before = [(w.data_ptr(), w.detach().clone()) for w in m._flat_weights]
    m.flatten_parameters()
    assert not cudnn_usable(m._flat_weights) and not is_flat(m._flat_weights)
    for w, (ptr, value) in zip(m._flat_weights, before, strict=True):
        assert w.data_ptr() == ptr and torch.equal(w, value)
    m.double()  # _apply flattens again: still a no-op on the CPU, and the module still runs
    assert m(torch.randn(5, 2, 3, dtype=torch.float64))[0].shape == (5, 2, 8)
