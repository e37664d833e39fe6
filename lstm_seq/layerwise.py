"""The ``layerwise`` backend: one ``torch.lstm`` call per layer and direction.

Why: cuDNN picks its fast *persistent* algorithm only for one-layer, unidirectional, half-precision
calls whose input and hidden sizes are multiples of 128 and whose batch is a multiple of 8 up to 128
(docs/performance.md, section 2, from PyTorch's ``aten/src/ATen/native/cudnn/RNN.cpp``). A stacked or
bidirectional ``nn.LSTM`` is one call and never qualifies. Splitting the same network into
``L * D`` single-layer unidirectional calls lets every call qualify; in fp32 no call qualifies and
the split only adds calls, so ``auto`` uses this backend only for half precision on a GPU (see
:meth:`lstm_seq.LSTM.plan`; the H100 timings of both cases are in benchmarks/RESULTS.md, "2026-11-26 —
GPU facts behind the backends").

The reverse direction runs the forward kernel on the time-reversed input (each sequence reversed
within its own length) and reverses its output back. Layer 0's input features may be zero-padded
to a multiple (``pad_input_to``, 128 on a GPU): the padded columns of ``W_ih`` are zero, so the
numbers do not change, and the gradient of the real columns is untouched.

Shapes: ``T`` steps, ``B`` batch, ``I`` input size, ``H`` hidden size, ``P`` size of ``h``
(``proj_size`` or ``H``), ``L`` layers, ``D`` directions.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from lstm_seq.fused import FusedConfig, run_lengths, run_padded
from lstm_seq.reference import stack_layers


def reverse_index(lengths: Tensor, steps: int, device: torch.device) -> Tensor:
    """(T, B) int64 on ``device``: for each sequence, step t ↦ its mirror ``lengths[b] - 1 - t`` inside the
    length, and itself past it. The map is its own inverse, so one index reverses a layer's input and
    restores its output."""
    t = torch.arange(steps, device=lengths.device)[:, None]  # built next to the (CPU) lengths, moved once
    lens = lengths[None, :]
    return torch.where(t < lens, lens - 1 - t, t).to(device)


def reverse_within_lengths(x: Tensor, lengths: Tensor | None, index: Tensor | None = None) -> Tensor:
    """x (T, B, F) → each sequence reversed over its first ``lengths[b]`` steps; the padding past a
    length stays where it is. lengths (B,) int64 or None (all T); ``index`` a precomputed
    :func:`reverse_index` of the same lengths."""
    if lengths is None:
        return x.flip(0)
    if index is None:
        index = reverse_index(lengths, x.shape[0], x.device)
    return x.gather(0, index[:, :, None].expand_as(x))


def pad_features(x: Tensor, w_ih: Tensor, multiple: int) -> tuple[Tensor, Tensor]:
    """Zero-pad the feature axis of x (T, B, I) and the columns of w_ih (4H, I) up to a multiple of
    ``multiple``; returns them unchanged when I already is one (or ``multiple`` <= 1)."""
    extra = -x.shape[-1] % multiple if multiple > 1 else 0
    if extra == 0:
        return x, w_ih
    return F.pad(x, (0, extra)), F.pad(w_ih, (0, extra))


def run_layers(
    x: Tensor,
    lengths: Tensor | None,
    h0: Tensor,
    c0: Tensor,
    blocks: list[list[Tensor]],
    cfg: FusedConfig,
    pad_input_to: int = 1,
    flat: Callable[[list[Tensor], int], list[Tensor]] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run a stacked (bi)LSTM one layer and direction at a time.

    Args:
        x: (T, B, I) time-major input.
        lengths: (B,) CPU int64 valid lengths, or None when every sequence has all T steps.
        h0: (L*D, B, P); c0: (L*D, B, H).
        blocks: per layer and direction (index ``layer * D + direction``), that block's weights in
            nn.LSTM's order ``w_ih, w_hh, [b_ih, b_hh], [w_hr]``.
        cfg: the module's options; dropout applies to every layer's output but the last.
        pad_input_to: zero-pad each layer's input features to a multiple of this (1 = never).
        flat: if given, ``flat(block_weights, input_size)`` returns one layer and direction's weights as a
            buffer cuDNN reads directly (:func:`lstm_seq.cudnn_weights.cast_flat`): one copy per block and
            forward instead of cuDNN's own copy inside every call (the blocks are views of the module's
            whole-stack buffer, which cuDNN cannot use for a one-layer call).

    Returns:
        output (T, B, D*P) (zero past each length), h_n (L*D, B, P), c_n (L*D, B, H).
    """
    dirs = 2 if cfg.bidirectional else 1
    one = FusedConfig(
        has_bias=cfg.has_bias, num_layers=1, bidirectional=False, dropout=0.0, training=cfg.training
    )
    # one reverse index for every reverse layer (input and output): built and copied to the device once
    index = reverse_index(lengths, x.shape[0], x.device) if lengths is not None and dirs == 2 else None

    def run(layer_in: Tensor, layer: int, d: int) -> tuple[Tensor, Tensor, Tensor]:
        k = layer * dirs + d
        inp, w_ih = pad_features(layer_in, blocks[k][0], pad_input_to)
        weights = [w_ih, *blocks[k][1:]]
        if flat is not None:
            weights = flat(weights, inp.shape[-1])
        if d == 1:
            inp = reverse_within_lengths(inp, lengths, index)
        state = (h0[k : k + 1], c0[k : k + 1])
        if lengths is None:
            out, h, c = run_padded(inp, *state, weights, one)
        else:
            out, h, c = run_lengths(inp, lengths, *state, weights, one)
        return (reverse_within_lengths(out, lengths, index) if d == 1 else out), h[0], c[0]

    return stack_layers(x, cfg.num_layers, dirs, run, dropout=cfg.dropout, training=cfg.training)
