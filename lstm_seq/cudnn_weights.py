"""The LSTM weights in the one flat buffer that cuDNN reads.

cuDNN runs an RNN on a single weight buffer in its own layout. ``torch.lstm`` hands it the module's weight
tensors; when they are views of one buffer in exactly that layout (checked by data pointer), cuDNN uses the
buffer as it is, otherwise it allocates a new buffer and copies every weight into it, **on every call**
(PyTorch then warns "RNN module weights are not part of single contiguous chunk of memory"). That copy costs
a fixed ≈ 0.4 ms per layer and direction on an H200 (benchmarks/RESULTS.md), more than the whole forward of a
small LSTM. Two tools here avoid it:

* :func:`flatten_` — what ``nn.LSTM.flatten_parameters`` does: move the module's own weights into one
  buffer in cuDNN's layout, each parameter becoming a view of it (``lstm_seq.LSTM`` calls it after every
  ``.to()``/``.cuda()``/``.half()``, as nn.LSTM does).
* :func:`cast_flat` — for mixed precision: the fp32 weights cast to fp16 as views of one new buffer in
  cuDNN's layout, through autograd (the gradients flow back to the fp32 weights). Under CUDA autocast,
  PyTorch's own cuDNN RNN wrapper does this cast *and* a re-flattening inside every call; doing it once per
  forward, outside autocast, leaves cuDNN a buffer it can use directly.

The layout of a configuration is read from cuDNN itself (:func:`layout`: flatten throw-away tensors once
and read their offsets), so nothing here assumes where cuDNN puts a weight or how it pads.

Weights are given per layer and direction in nn.LSTM's order ``w_ih, w_hh, [b_ih, b_hh], [w_hr]``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor

# cuDNN's mode number for an LSTM (torch.backends.cudnn.rnn.get_cudnn_mode("LSTM"))
_CUDNN_LSTM = 2


@dataclass(frozen=True)
class FlatConfig:
    """What fixes cuDNN's weight layout: sizes, depth, directions, and the weights per layer and direction."""

    input_size: int
    hidden_size: int
    proj_size: int
    num_layers: int
    bidirectional: bool
    weights_per_block: int  # 2 (no bias), 4, or 3/5 with proj_size


def cudnn_usable(weights: list[Tensor]) -> bool:
    """Whether cuDNN would take these weights: all on one CUDA device, one floating dtype it accepts, and
    cuDNN enabled."""
    if not weights or not all(isinstance(w, Tensor) for w in weights):
        return False
    first = weights[0]
    if not first.is_cuda or not torch.backends.cudnn.is_acceptable(first):
        return False
    return all(w.is_cuda and w.dtype == first.dtype and w.device == first.device for w in weights)


def is_flat(weights: list[Tensor]) -> bool:
    """Whether the weights already are distinct views of one storage (after :func:`flatten_`)."""
    if not weights:
        return False
    base = weights[0].untyped_storage().data_ptr()
    ptrs = {w.data_ptr() for w in weights}
    return len(ptrs) == len(weights) and all(w.untyped_storage().data_ptr() == base for w in weights)


def flatten_(weights: list[Tensor], cfg: FlatConfig) -> bool:
    """Move ``weights`` (the module's parameters, in place) into one new buffer in cuDNN's layout, each
    becoming a view of it, as ``nn.LSTM.flatten_parameters`` does. Returns False (and changes nothing) when
    cuDNN would not take them (:func:`cudnn_usable`) or two of them share memory."""
    if not cudnn_usable(weights) or len({w.data_ptr() for w in weights}) != len(weights):
        return False
    with torch.no_grad(), torch.cuda.device_of(weights[0]):
        torch._cudnn_rnn_flatten_weight(
            weights, cfg.weights_per_block, cfg.input_size, _CUDNN_LSTM, cfg.hidden_size, cfg.proj_size,
            cfg.num_layers, False, cfg.bidirectional,
        )  # fmt: skip
    return True


@functools.lru_cache(maxsize=64)
def layout(
    shapes: tuple[tuple[int, ...], ...], dtype: torch.dtype, device: torch.device, cfg: FlatConfig
) -> tuple[tuple[int, ...], int]:
    """cuDNN's layout for weights of these shapes, dtype and configuration: the element offset of each
    weight in the flat buffer, and the buffer's size. Read from cuDNN by flattening throw-away tensors."""
    tmp = [torch.empty(s, dtype=dtype, device=device) for s in shapes]
    flatten_(tmp, cfg)
    buffer = tmp[0].untyped_storage().nbytes() // tmp[0].element_size()
    return tuple(t.storage_offset() for t in tmp), buffer


def cast_flat(
    weights: list[Tensor],
    dtype: torch.dtype,
    cfg: FlatConfig,
    where: tuple[tuple[int, ...], int] | None = None,
) -> list[Tensor]:
    """The weights cast to ``dtype``, as views of one new buffer in cuDNN's layout (gaps zero), through
    autograd: one concatenation and one cast per call, instead of the copy inside every cuDNN call.

    weights: CUDA tensors in nn.LSTM's order per layer and direction (shapes of each weight kept).
    where: the layout (each weight's offset, the buffer's size); default cuDNN's, from :func:`layout`.
    Returns the same shapes in ``dtype``.
    """
    if where is None:
        where = layout(tuple(tuple(w.shape) for w in weights), dtype, weights[0].device, cfg)
    offsets, total = where
    order = sorted(range(len(weights)), key=offsets.__getitem__)
    pieces: list[Tensor] = []
    pos = 0
    for k in order:
        if offsets[k] > pos:
            pieces.append(weights[k].new_zeros(offsets[k] - pos))
        pieces.append(weights[k].reshape(-1))
        pos = offsets[k] + weights[k].numel()
    if total > pos:
        pieces.append(weights[0].new_zeros(total - pos))
    flat = torch.cat(pieces).to(dtype)
    return [flat[offsets[k] : offsets[k] + w.numel()].view_as(w) for k, w in enumerate(weights)]
