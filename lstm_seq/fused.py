"""The ``fused`` backend: PyTorch's built-in LSTM kernels (cuDNN on a GPU, ATen's native loop on CPU).

They cover plain LSTMs of any depth and direction, with ``proj_size``, packed sequences and
inter-layer dropout, but not LayerNorm. A padded batch with ``lengths`` is served by packing it.

Shapes: ``T`` steps, ``B`` batch, ``I`` input size, ``H`` hidden size, ``P`` size of ``h``
(``proj_size`` or ``H``), ``L`` layers, ``D`` directions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence


@dataclass(frozen=True)
class FusedConfig:
    """The static options of one fused call (those of nn.LSTM)."""

    has_bias: bool
    num_layers: int
    bidirectional: bool
    dropout: float
    training: bool


def run_padded(
    x: Tensor, h0: Tensor, c0: Tensor, flat_weights: list[Tensor], cfg: FusedConfig
) -> tuple[Tensor, Tensor, Tensor]:
    """Every sequence has the full length T.

    x: (T, B, I) time-major; h0: (L*D, B, P); c0: (L*D, B, H); flat_weights per layer and direction
    ``w_ih, w_hh, [b_ih, b_hh], [w_hr]`` (nn.LSTM's order).
    Returns output (T, B, D*P), h_n (L*D, B, P), c_n (L*D, B, H).
    """
    out, h_n, c_n = torch.lstm(
        x, (h0, c0), flat_weights, cfg.has_bias, cfg.num_layers, cfg.dropout, cfg.training,
        cfg.bidirectional, False,
    )  # fmt: skip
    return out, h_n, c_n


def run_packed(
    packed: PackedSequence, h0: Tensor, c0: Tensor, flat_weights: list[Tensor], cfg: FusedConfig
) -> tuple[PackedSequence, Tensor, Tensor]:
    """A packed batch; h0/c0 and the returned h_n/c_n are in the caller's (unsorted) batch order.

    packed.data: (sum of lengths, I). Returns the packed output (data (sum of lengths, D*P), same
    batch_sizes and indices), h_n (L*D, B, P), c_n (L*D, B, H).
    """
    order, unorder = packed.sorted_indices, packed.unsorted_indices
    if order is not None:
        h0, c0 = h0.index_select(1, order), c0.index_select(1, order)
    data, h_n, c_n = torch.lstm(
        packed.data, packed.batch_sizes, (h0, c0), flat_weights, cfg.has_bias, cfg.num_layers,
        cfg.dropout, cfg.training, cfg.bidirectional,
    )  # fmt: skip
    if unorder is not None:
        h_n, c_n = h_n.index_select(1, unorder), c_n.index_select(1, unorder)
    return packed._replace(data=data), h_n, c_n


def run_lengths(
    x: Tensor, lengths: Tensor, h0: Tensor, c0: Tensor, flat_weights: list[Tensor], cfg: FusedConfig
) -> tuple[Tensor, Tensor, Tensor]:
    """A padded batch: x (T, B, I), lengths (B,) int64 on the CPU, each in [1, T].

    Packs, runs, unpacks. Returns output (T, B, D*P), zero past each length, and h_n/c_n taken at
    each sequence's own last valid step.
    """
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    out, h_n, c_n = run_packed(packed, h0, c0, flat_weights, cfg)
    padded, _ = pad_packed_sequence(out, total_length=x.shape[0], padding_value=0.0)
    return padded, h_n, c_n
