"""Exporting :class:`lstm_seq.LSTM` over padded batches of any length: one ONNX ``LSTM`` node per layer.

``torch.onnx.export(..., dynamo=True)`` decomposes ``aten::lstm`` into a loop unrolled over the example's
time steps, so a graph traced with one length fails (or is wrong) for another. Here each layer is the custom
operator ``lstm_seq::lstm_layer``: in PyTorch it runs the fused kernels on a packed batch, in ONNX it is the
standard ``LSTM`` operator with ``sequence_lens`` (dynamic batch and length, and the reverse direction of a
padded sequence starts at its own last valid step, as with ``lengths=`` in PyTorch). The weights travel in
ONNX's layout (gate order i, o, f, c; ``B = [Wb; Rb]``), built once by :func:`onnx_weights`.

:func:`lstm_padded` is the drop-in for ``lstm(x, lengths=lengths)[0]`` inside a module that is exported.
:func:`onnx_translation_table` gives ``torch.onnx.export`` the ONNX form of the operator (onnxscript is
imported only there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstm_seq.lstm import LSTM

__all__ = ["lstm_layer", "lstm_padded", "onnx_translation_table", "onnx_weights"]


def _ifgo_to_iofc(m: Tensor, hidden: int) -> Tensor:
    i, f, g, o = m.split(hidden, 0)
    return torch.cat([i, o, f, g], 0)


def _iofc_to_ifgo(m: Tensor, hidden: int) -> Tensor:
    i, o, f, g = m.split(hidden, 0)
    return torch.cat([i, f, g, o], 0)


@torch.library.custom_op("lstm_seq::lstm_layer", mutates_args=())
def lstm_layer(x: Tensor, lengths: Tensor, w: Tensor, r: Tensor, b: Tensor) -> Tensor:
    """One layer (one or two directions) over a padded, time-major batch, zero initial state.

    Args:
        x: (T, B, I).
        lengths: (B,) int64 valid steps, each in [1, T].
        w: (D, 4H, I) input weights, ONNX gate order i, o, f, c.
        r: (D, 4H, H) recurrent weights, same order.
        b: (D, 8H) ``[b_ih; b_hh]`` in the same order.
    Returns:
        (T, B, D·H), ``[forward, reverse]`` features, zero past each length.
    """
    d, h4 = w.shape[0], w.shape[1]
    hidden = h4 // 4
    flat: list[Tensor] = []
    for k in range(d):
        flat += [_iofc_to_ifgo(w[k], hidden), _iofc_to_ifgo(r[k], hidden)]
        flat += [_iofc_to_ifgo(b[k, :h4], hidden), _iofc_to_ifgo(b[k, h4:], hidden)]
    packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
    zeros = x.new_zeros(d, x.shape[1], hidden)
    data, _, _ = torch.lstm(
        packed.data, packed.batch_sizes, (zeros, zeros), flat, True, 1, 0.0, False, d == 2
    )  # fmt: skip
    y, _ = pad_packed_sequence(packed._replace(data=data), total_length=x.shape[0])
    return y


@lstm_layer.register_fake
def _lstm_layer_fake(x: Tensor, lengths: Tensor, w: Tensor, r: Tensor, b: Tensor) -> Tensor:
    return x.new_empty(x.shape[0], x.shape[1], w.shape[0] * r.shape[2])


def onnx_weights(lstm: LSTM) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Per layer, ``(W (D, 4H, I), R (D, 4H, H), B (D, 8H))`` in ONNX's layout (detached copies).

    Only plain LSTMs: ``bias=True``, no ``proj_size``, no ``layer_norm`` (the ONNX operator has neither)."""
    if lstm.proj_size or lstm.layer_norm or not lstm.bias:
        raise ValueError("ONNX export covers LSTMs with bias, without proj_size and without layer_norm")
    hidden = lstm.hidden_size
    out = []
    for layer in range(lstm.num_layers):
        ws, rs, bs = [], [], []
        for sfx in lstm._suffixes():
            p = {
                n: getattr(lstm, f"{n}_l{layer}{sfx}").detach()
                for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            }
            ws.append(_ifgo_to_iofc(p["weight_ih"], hidden))
            rs.append(_ifgo_to_iofc(p["weight_hh"], hidden))
            bs.append(torch.cat([_ifgo_to_iofc(p["bias_ih"], hidden), _ifgo_to_iofc(p["bias_hh"], hidden)]))
        out.append((torch.stack(ws), torch.stack(rs), torch.stack(bs)))
    return out


def lstm_padded(x: Tensor, lengths: Tensor, weights: list[tuple[Tensor, Tensor, Tensor]]) -> Tensor:
    """The stacked LSTM of :func:`onnx_weights` over a padded batch (eval mode: no dropout).

    Args:
        x: (B, T, I) batch-first.
        lengths: (B,) int64 in [1, T].
    Returns:
        (B, T, D·H), zero past each length; equal to ``lstm(x, lengths=lengths)[0]``.
    """
    y = x.transpose(0, 1)
    for w, r, b in weights:
        y = lstm_layer(y, lengths, w, r, b)
    return y.transpose(0, 1)


def onnx_translation_table() -> dict[Any, Callable[..., Any]]:
    """``custom_translation_table`` for ``torch.onnx.export(dynamo=True)``: ``lstm_seq::lstm_layer`` → ONNX
    ``LSTM`` with ``sequence_lens``, output reshaped from (T, D, B, H) to (T, B, D·H)."""
    from onnxscript import opset18 as op

    def lstm_layer_onnx(x: Any, lengths: Any, w: Any, r: Any, b: Any) -> Any:
        hidden = r.shape[2]
        direction = "bidirectional" if w.shape[0] == 2 else "forward"
        seq_lens = op.Cast(lengths, to=6)  # int32
        y, _, _ = op.LSTM(x, w, r, b, seq_lens, hidden_size=hidden, direction=direction)
        y = op.Transpose(y, perm=[0, 2, 1, 3])  # (T, B, D, H)
        new_shape = op.Concat(op.Shape(y, start=0, end=2), op.Constant(value_ints=[-1]), axis=0)
        return op.Reshape(y, new_shape)

    return {torch.ops.lstm_seq.lstm_layer.default: lstm_layer_onnx}
