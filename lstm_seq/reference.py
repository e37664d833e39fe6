"""The reference recurrence: the LSTM equations, one time step after another, in plain tensor ops.

It runs on every device and dtype and supports every option of :class:`lstm_seq.LSTM` (padded
``lengths``, ``proj_size``, LayerNorm). It is the ground truth the fast backends are tested
against, and what ``backend="auto"`` falls back to when no fused kernel applies.

Shapes: ``T`` time steps, ``B`` batch, ``I`` input features, ``H`` hidden size, ``P`` the size of
``h`` (``proj_size`` if set, else ``H``), ``D`` directions (1 or 2), ``L`` layers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

LN_EPS = 1e-5  # epsilon of every LayerNorm in the LayerNorm LSTM


@dataclass(frozen=True)
class DirectionWeights:
    """The parameters of one layer and direction (names as in ``torch.nn.LSTM``).

    w_ih: (4H, I_layer); w_hh: (4H, P); b_ih, b_hh: (4H,) or None; w_hr: (P, H) or None.
    ln_ih, ln_hh: (4H,) LayerNorm gains of the two pre-activations, or None;
    ln_c_weight, ln_c_bias: (H,) LayerNorm gain and bias of the cell before its tanh, or None.
    """

    w_ih: Tensor
    w_hh: Tensor
    b_ih: Tensor | None
    b_hh: Tensor | None
    w_hr: Tensor | None = None
    ln_ih: Tensor | None = None
    ln_hh: Tensor | None = None
    ln_c_weight: Tensor | None = None
    ln_c_bias: Tensor | None = None

    @property
    def layer_norm(self) -> bool:
        return self.ln_ih is not None


def input_projection(x: Tensor, w: DirectionWeights) -> Tensor:
    """The input half of the pre-activations for every step at once (one GEMM).

    x: (T, B, I) -> (T, B, 4H). Without LayerNorm both biases are folded in here; with it,
    ``LN_ih(W_ih x_t) + b_ih`` (b_hh is added after the recurrent LayerNorm in :func:`recurrence`).
    """
    if w.layer_norm:
        z = F.layer_norm(x @ w.w_ih.t(), (w.w_ih.shape[0],), w.ln_ih, None, LN_EPS)
        return z if w.b_ih is None else z + w.b_ih
    z = x @ w.w_ih.t()
    if w.b_ih is not None:
        z = z + w.b_ih + w.b_hh
    return z


def cell_step(xp_t: Tensor, h: Tensor, c: Tensor, w: DirectionWeights) -> tuple[Tensor, Tensor]:
    """One step of the equations.

    xp_t: (B, 4H) input pre-activation from :func:`input_projection`; h: (B, P); c: (B, H).
    Returns (h_t, c_t) with shapes (B, P), (B, H).
    """
    r = h @ w.w_hh.t()
    if w.layer_norm:
        r = F.layer_norm(r, (r.shape[-1],), w.ln_hh, None, LN_EPS)
        if w.b_hh is not None:
            r = r + w.b_hh
    gates = xp_t + r
    i, f, g, o = gates.chunk(4, dim=-1)
    c_t = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    c_out = c_t
    if w.layer_norm:
        c_out = F.layer_norm(c_t, (c_t.shape[-1],), w.ln_c_weight, w.ln_c_bias, LN_EPS)
    h_t = torch.sigmoid(o) * torch.tanh(c_out)
    if w.w_hr is not None:
        h_t = h_t @ w.w_hr.t()
    return h_t, c_t


def recurrence(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    w: DirectionWeights,
    *,
    reverse: bool = False,
    mask: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run one direction of one layer over a whole sequence.

    x: (T, B, I); h0: (B, P); c0: (B, H); mask: (T, B, 1) bool, True at valid steps (a padded
    batch), or None. ``reverse`` walks from the last step to the first; with a mask, each
    sequence's reverse pass therefore starts at its own last valid step.

    Returns output (T, B, P) (zero at padded steps), h_n (B, P), c_n (B, H): the states after each
    sequence's last valid step.
    """
    # unbind, not xp[t]: the backward of T separate selects would write T full-size (T, B, 4H)
    # gradients (quadratic in T); unbind's backward stacks the T step gradients once.
    xp = input_projection(x, w).unbind(0)
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    outputs: list[Tensor] = [x.new_empty(0)] * x.shape[0]
    h, c = h0, c0
    for t in steps:
        h_t, c_t = cell_step(xp[t], h, c, w)
        if mask is None:
            h, c = h_t, c_t
            outputs[t] = h_t
        else:
            m = mask[t]
            h = torch.where(m, h_t, h)
            c = torch.where(m, c_t, c)
            outputs[t] = h_t.masked_fill(~m, 0.0)
    return torch.stack(outputs), h, c


def valid_mask(lengths: Tensor, steps: int, device: torch.device) -> Tensor:
    """(T, B, 1) bool, True at step t of sequence b when t < lengths[b] (the ``mask`` of
    :func:`recurrence`). lengths: (B,) int64."""
    t = torch.arange(steps, device=device)
    return (t[:, None] < lengths.to(device)[None, :]).unsqueeze(-1)


# run(layer_input (T, B, I_k), layer, direction) -> (output (T, B, P), h_n (B, P), c_n (B, H))
DirectionRun = Callable[[Tensor, int, int], tuple[Tensor, Tensor, Tensor]]


def stack_layers(
    x: Tensor,
    num_layers: int,
    num_directions: int,
    run: DirectionRun,
    *,
    dropout: float = 0.0,
    training: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """The layer and direction structure shared by every backend that runs one direction at a time.

    Layer ``k > 0`` reads layer ``k-1``'s output, both directions concatenated ``[forward, reverse]``;
    dropout acts on every layer's output but the last, in training only (as nn.LSTM). ``run`` computes
    one layer and direction (index ``layer * D + direction`` of h0/c0 and of the weights).

    Returns output (T, B, D*P), h_n (L*D, B, P), c_n (L*D, B, H).
    """
    h_n: list[Tensor] = []
    c_n: list[Tensor] = []
    layer_in = x
    for layer in range(num_layers):
        outs = []
        for d in range(num_directions):
            out, h, c = run(layer_in, layer, d)
            outs.append(out)
            h_n.append(h)
            c_n.append(c)
        layer_in = outs[0] if num_directions == 1 else torch.cat(outs, dim=-1)
        if dropout > 0.0 and training and layer < num_layers - 1:
            layer_in = F.dropout(layer_in, p=dropout, training=True)
    return layer_in, torch.stack(h_n), torch.stack(c_n)


def stacked(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    weights: list[list[DirectionWeights]],
    *,
    dropout: float = 0.0,
    training: bool = False,
    mask: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run a stack of (possibly bidirectional) layers with :func:`recurrence`.

    x: (T, B, I); h0: (L*D, B, P); c0: (L*D, B, H); weights[layer][direction].
    Dropout is applied to every layer's output but the last, in training only (as nn.LSTM).
    Returns output (T, B, D*P), h_n (L*D, B, P), c_n (L*D, B, H).
    """
    num_dirs = len(weights[0])

    def run(layer_in: Tensor, layer: int, d: int) -> tuple[Tensor, Tensor, Tensor]:
        k = layer * num_dirs + d
        return recurrence(layer_in, h0[k], c0[k], weights[layer][d], reverse=d == 1, mask=mask)

    return stack_layers(x, len(weights), num_dirs, run, dropout=dropout, training=training)
