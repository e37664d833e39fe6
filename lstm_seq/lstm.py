r"""``lstm_seq.LSTM``: the one recurrent module behind every model in this project.

Equations
---------
For each layer and direction, at every time step ``t`` (σ the logistic sigmoid, ⊙ the elementwise
product)::

    i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)        input gate
    f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)        forget gate
    g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)     candidate
    o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)        output gate
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                       cell
    h_t = o_t ⊙ tanh(c_t)                                 output
    h_t = W_hr (o_t ⊙ tanh(c_t))                          output, with proj_size > 0

Layers stack: layer ``k > 0`` reads the output of layer ``k-1`` (both directions concatenated,
``[forward, reverse]``), with dropout between layers in training. The reverse direction runs the
same equations from the last step to the first.

LayerNorm LSTM (``layer_norm=True``; Ba, Kiros & Hinton 2016), exactly::

    a_t = LN(W_ih x_t; γ_ih) + b_ih + LN(W_hh h_{t-1}; γ_hh) + b_hh     (4H pre-activations)
    i_t, f_t, g_t, o_t = σ, σ, tanh, σ of the four H-slices of a_t
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                                     (carried un-normalised)
    h_t = o_t ⊙ tanh(LN(c_t; γ_c, β_c))                                 (then W_hr with proj_size)

where ``LN(z; γ, β) = γ ⊙ (z − mean(z)) / sqrt(var(z) + 1e-5) + β`` over the feature axis (the whole
4H vector for the pre-activations). Learnable: the gains γ_ih, γ_hh (4H, initialised to 1) —
their biases would duplicate ``bias_ih``/``bias_hh``, which play that role — and the cell's gain
γ_c and bias β_c (H, initialised to 1 and 0).

Parameters (the names and layout of ``torch.nn.LSTM``)
----------------------------------------------------------
For layer ``k`` and suffix ``""`` (forward) or ``"_reverse"``; ``H`` = hidden_size, ``P`` =
proj_size or H, ``I_k`` = input_size for k = 0 else ``D * P``:

* ``weight_ih_l{k}{suffix}`` (4H, I_k) = [W_ii; W_if; W_ig; W_io] — gate order **i, f, g, o**
* ``weight_hh_l{k}{suffix}`` (4H, P)   = [W_hi; W_hf; W_hg; W_ho]
* ``bias_ih_l{k}{suffix}``, ``bias_hh_l{k}{suffix}`` (4H,) when ``bias=True``
* ``weight_hr_l{k}{suffix}`` (P, H) when ``proj_size > 0``
* with ``layer_norm=True`` also ``ln_ih_weight_l{k}{suffix}``, ``ln_hh_weight_l{k}{suffix}``
  (4H,), ``ln_c_weight_l{k}{suffix}``, ``ln_c_bias_l{k}{suffix}`` (H,)

so ``lstm_seq.LSTM(...).load_state_dict(nn_lstm.state_dict())`` works both ways.

Backends and the dispatch of ``auto``
-------------------------------------
``backend`` picks how the equations are computed; every backend gives the same numbers (tested
in float64 to 1e-9 relative):

* ``"reference"`` — :mod:`lstm_seq.reference`: one Python-level step after another; the input
  projection of all steps is one GEMM. Every device, dtype and option.
* ``"fused"`` — :mod:`lstm_seq.fused`: PyTorch's built-in kernels (cuDNN on a GPU, ATen's native
  loop on CPU) through ``torch.lstm``, the whole stack in one call; every option but ``layer_norm``.
* ``"layerwise"`` — :mod:`lstm_seq.layerwise`: the same kernels, one call per layer and direction
  (the reverse direction on time-reversed input), layer 0's features zero-padded to a multiple of
  128 on a GPU; every option but ``layer_norm``.
* ``"ln_kernel"`` — :mod:`lstm_seq.kernels.ln_lstm`: the LayerNorm LSTM as one autograd node per
  layer and direction, with a hand-written backward; per step one GEMM and one fused pointwise
  kernel (Triton on CUDA, plain torch ops elsewhere). Only ``layer_norm=True`` without
  ``proj_size``.
* ``"auto"`` (default) — :func:`choose_backend`:

  - ``layer_norm=True``: ``ln_kernel`` on CUDA when Triton is installed; off the GPU, the backend
    :data:`AUTO_LAYER_NORM_CPU` names for the pass (a forward that autograd records for a backward,
    or one that it does not), which is the faster one in the measurement it cites; ``reference``
    with ``proj_size`` (``ln_kernel`` has no projection).
  - CUDA, half precision (fp16/bf16 input or CUDA autocast), more than one layer or bidirectional,
    hidden size above :data:`SMALL_H_MAX`, no ``lengths``, no ``proj_size`` → ``layerwise``: cuDNN's fast
    persistent algorithm runs one-layer unidirectional half-precision calls, and whole stacks only up to H 128;
    packed input never runs it (docs/performance.md, section 2).
  - everything else → ``fused``: on the CPU it is nn.LSTM's own kernel and faster than the
    reference loop; on a GPU in fp32 one cuDNN call beats the split.

The facts behind each rule are in docs/performance.md; the timings in benchmarks/RESULTS.md.

On CUDA the plain weights are kept in one buffer in cuDNN's layout (:meth:`LSTM.flatten_parameters`, as
nn.LSTM), and under autocast cast to fp16 once per forward into that layout (:mod:`lstm_seq.cudnn_weights`), so
cuDNN never copies them inside a call.

:meth:`LSTM.plan` says which backend a given input would run on.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from lstm_seq import cudnn_weights, fused, layerwise, reference
from lstm_seq.kernels import ln_lstm, triton_ln_lstm

Backend = Literal["auto", "reference", "fused", "layerwise", "ln_kernel"]
State = tuple[Tensor, Tensor]
BACKENDS: tuple[str, ...] = ("auto", "reference", "fused", "layerwise", "ln_kernel")
# cuDNN's persistent algorithm wants input and hidden sizes that are multiples of this (docs/performance.md).
GPU_FEATURE_MULTIPLE = 128
# Up to this hidden size cuDNN runs a whole LSTM stack, both directions, with its persistent "small H" algorithm
# (forward H <= 192, backward H <= 128; PyTorch's aten/src/ATen/native/cudnn/RNN.cpp, use_rnn_persist_small_h),
# in every floating dtype but float64 and without packing: one call then beats one call per layer and direction.
SMALL_H_MAX = 128

# What ``auto`` runs for a LayerNorm LSTM off the GPU, per pass: "fwd" = a forward that autograd does not
# record (inference, decoding), "fwd+bwd" = one it records (training). Each is the faster of ``ln_kernel``
# and ``reference`` in the result file of the entry "2026-12-01 — ln_kernel against the reference loop on the
# CPU" in benchmarks/RESULTS.md (its ln-1layer rows, with and without lengths). tests/lstm/test_ln_kernel.py
# names that file, reads it and checks this table against it.
AUTO_LAYER_NORM_CPU: dict[str, str] = {"fwd": "reference", "fwd+bwd": "reference"}


def choose_backend(
    backend: str,
    *,
    layer_norm: bool,
    device_type: str,
    half_precision: bool,
    num_layers: int,
    bidirectional: bool,
    proj_size: int,
    records_grad: bool = True,
    hidden_size: int = SMALL_H_MAX + 1,
    has_lengths: bool = False,
) -> str:
    """The dispatch rule behind :meth:`LSTM.plan`, as a pure function of what it depends on.

    Returns ``"reference"``, ``"fused"``, ``"layerwise"`` or ``"ln_kernel"``. ``half_precision``
    means the input is fp16/bf16 or CUDA autocast is on; ``records_grad`` that autograd records the
    forward for a backward (it matters only for LayerNorm off the GPU: :data:`AUTO_LAYER_NORM_CPU`);
    ``hidden_size`` and ``has_lengths`` (a padded batch with ``lengths``) decide whether splitting the layers
    helps on a GPU (see the module docs).
    """
    if backend == "reference":
        return "reference"
    if layer_norm:
        if backend == "ln_kernel":
            return "ln_kernel"
        if proj_size > 0:
            return "reference"
        if device_type == "cuda":
            return "ln_kernel" if triton_ln_lstm.available() else "reference"
        return AUTO_LAYER_NORM_CPU["fwd+bwd" if records_grad else "fwd"]
    if backend != "auto":
        return backend
    # one call per layer and direction pays only where it turns cuDNN's standard algorithm into its persistent
    # one: half precision, a stack or two directions, and a hidden size too large for the persistent algorithm
    # cuDNN already runs on a whole small-H stack; never with lengths (packed input runs no persistent kernel)
    split_helps = (num_layers > 1 or bidirectional) and hidden_size > SMALL_H_MAX and not has_lengths
    if device_type == "cuda" and half_precision and split_helps and proj_size == 0:
        return "layerwise"
    return "fused"


class LSTM(nn.Module):
    """A multi-layer LSTM, a drop-in replacement for :class:`torch.nn.LSTM` (see the module docs).

    Args:
        input_size: features of ``x_t`` (I).
        hidden_size: features of the cell ``c_t`` (H).
        num_layers: stacked layers (L).
        bias: use ``bias_ih``/``bias_hh``.
        batch_first: input and output are (B, T, F) instead of (T, B, F); states are always
            (L*D, B, ·).
        dropout: dropout on each layer's output except the last, in training.
        bidirectional: add a reverse direction per layer (D = 2).
        proj_size: if > 0, ``h_t`` is projected to this size (P) by ``weight_hr``.
        layer_norm: LayerNorm LSTM (see the module docs for exactly what is normalised).
        forget_bias: if given, the forget-gate slice of every ``bias_ih`` is set to this value and
            that of ``bias_hh`` to 0 (long memories: try 1–3).
        chrono_init: if given (T_max > 2), the chrono initialisation of Tallec & Ollivier (2018):
            forget bias ``log(U(1, T_max - 1))``, input bias its negative (``bias_hh`` zero there).
        backend: ``"auto"``, ``"reference"``, ``"fused"``, ``"layerwise"`` or ``"ln_kernel"`` (module
            docs: what each runs and what ``auto`` picks).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        layer_norm: bool = False,
        forget_bias: float | None = None,
        chrono_init: float | None = None,
        backend: Backend = "auto",
    ) -> None:
        super().__init__()
        _check_sizes(input_size, hidden_size, num_layers, dropout, proj_size)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if layer_norm and backend in ("fused", "layerwise"):
            raise ValueError(
                f"backend={backend!r} has no LayerNorm kernel; use backend='auto', 'ln_kernel' or 'reference'"
            )
        if backend == "ln_kernel" and (not layer_norm or proj_size > 0):
            raise ValueError(
                "backend='ln_kernel' is the LayerNorm LSTM kernel: it needs layer_norm=True, proj_size=0"
            )
        if forget_bias is not None and chrono_init is not None:
            raise ValueError("forget_bias and chrono_init are exclusive: give one of them")
        if (forget_bias is not None or chrono_init is not None) and not bias:
            raise ValueError("forget_bias/chrono_init set gate biases, so they need bias=True")
        if chrono_init is not None and not chrono_init > 2:
            raise ValueError(f"chrono_init is T_max, the longest dependency; must be > 2, got {chrono_init}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"dropout={dropout} acts between layers, so it does nothing with num_layers=1",
                stacklevel=2,
            )
        self.mode = "LSTM"
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.layer_norm = layer_norm
        self.forget_bias = forget_bias
        self.chrono_init = chrono_init
        self.backend = backend

        factory = {"device": device, "dtype": dtype}
        num_dirs = 2 if bidirectional else 1
        h_out = proj_size if proj_size > 0 else hidden_size
        gates = 4 * hidden_size
        self._flat_weights_names: list[str] = []
        # Registered in nn.LSTM's order so that parameters() lines up and a seeded init matches.
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else h_out * num_dirs
            for sfx in self._suffixes():
                shapes = [(f"weight_ih_l{layer}{sfx}", (gates, layer_in))]
                shapes.append((f"weight_hh_l{layer}{sfx}", (gates, h_out)))
                if bias:
                    shapes += [(f"bias_ih_l{layer}{sfx}", (gates,)), (f"bias_hh_l{layer}{sfx}", (gates,))]
                if proj_size > 0:
                    shapes.append((f"weight_hr_l{layer}{sfx}", (proj_size, hidden_size)))
                for name, shape in shapes:
                    self.register_parameter(name, nn.Parameter(torch.empty(shape, **factory)))
                    self._flat_weights_names.append(name)
        if layer_norm:
            for layer in range(num_layers):
                for sfx in self._suffixes():
                    for name, size in (
                        (f"ln_ih_weight_l{layer}{sfx}", gates),
                        (f"ln_hh_weight_l{layer}{sfx}", gates),
                        (f"ln_c_weight_l{layer}{sfx}", hidden_size),
                        (f"ln_c_bias_l{layer}{sfx}", hidden_size),
                    ):
                        self.register_parameter(name, nn.Parameter(torch.empty(size, **factory)))
        self.reset_parameters()

    # ------------------------------------------------------------------ construction helpers
    def _suffixes(self) -> list[str]:
        return ["", "_reverse"] if self.bidirectional else [""]

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Features per direction of ``h_t`` (P)."""
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    @property
    def _flat_weights(self) -> list[Tensor]:
        """The plain LSTM parameters in nn.LSTM's order; cached (a forward reads them several times), the
        cache dropped when one is re-assigned or the module moved."""
        cached = self.__dict__.get("_flat_cache")
        if cached is None:
            cached = [getattr(self, name) for name in self._flat_weights_names]
            self.__dict__["_flat_cache"] = cached
        return cached

    def __setattr__(self, name: str, value: object) -> None:
        if name in self.__dict__.get("_flat_weights_names", ()):
            self.__dict__.pop("_flat_cache", None)
            self.__dict__["_cudnn_flat"] = False
        super().__setattr__(name, value)

    @property
    def all_weights(self) -> list[list[Tensor]]:
        """Per layer and direction, the list of that block's nn.LSTM parameters (as nn.LSTM)."""
        per = len(self._flat_weights_names) // (self.num_layers * self.num_directions)
        w = self._flat_weights
        return [w[i : i + per] for i in range(0, len(w), per)]

    def reset_parameters(self) -> None:
        """nn.LSTM's initialisation (every weight and bias ~ U(±1/√H)), LayerNorm gains 1 and
        biases 0, then ``forget_bias`` or ``chrono_init`` if set."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        H = self.hidden_size
        with torch.no_grad():
            for name in self._flat_weights_names:
                nn.init.uniform_(getattr(self, name), -bound, bound)
            for name, p in self.named_parameters():
                if name.startswith("ln_"):
                    p.fill_(0.0 if "_bias_" in name else 1.0)
            for layer in range(self.num_layers):
                for sfx in self._suffixes():
                    if not self.bias:
                        continue
                    b_ih = getattr(self, f"bias_ih_l{layer}{sfx}")
                    b_hh = getattr(self, f"bias_hh_l{layer}{sfx}")
                    if self.forget_bias is not None:
                        b_ih[H : 2 * H] = self.forget_bias
                        b_hh[H : 2 * H] = 0.0
                    elif self.chrono_init is not None:
                        u = torch.empty(H, dtype=torch.float64).uniform_(1.0, self.chrono_init - 1.0)
                        b_ih[H : 2 * H] = torch.log(u).to(b_ih)
                        b_ih[:H] = -b_ih[H : 2 * H]
                        b_hh[: 2 * H] = 0.0

    def flatten_parameters(self) -> None:
        """Put the LSTM weights into one buffer in cuDNN's layout, each parameter a view of it, as
        ``nn.LSTM.flatten_parameters`` does, so that cuDNN reads them as they are instead of copying them
        into a new buffer on every call (:mod:`lstm_seq.cudnn_weights`). Done after every ``.to()``,
        ``.cuda()``, ``.half()``; a no-op off CUDA, for a LayerNorm LSTM (cuDNN never runs one) and
        wherever cuDNN would not take the weights."""
        self.__dict__.pop("_flat_cache", None)
        flat = not self.layer_norm and cudnn_weights.flatten_(self._flat_weights, self._flat_config())
        self.__dict__["_cudnn_flat"] = flat

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        # .to()/.cuda()/.half() give each parameter a storage of its own: flatten again (as nn.RNNBase)
        self.__dict__.pop("_flat_cache", None)
        result = super()._apply(fn, recurse)
        self.flatten_parameters()
        return result

    def _flat_config(
        self, num_layers: int | None = None, input_size: int | None = None
    ) -> cudnn_weights.FlatConfig:
        """cuDNN's view of this module (or of one layer and direction: ``num_layers=1``, unidirectional)."""
        one_block = num_layers is not None
        return cudnn_weights.FlatConfig(
            input_size=self.input_size if input_size is None else input_size,
            hidden_size=self.hidden_size,
            proj_size=self.proj_size,
            num_layers=self.num_layers if num_layers is None else num_layers,
            bidirectional=self.bidirectional and not one_block,
            weights_per_block=len(self._flat_weights_names) // (self.num_layers * self.num_directions),
        )

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        opts = {
            "num_layers": (self.num_layers, 1),
            "bias": (self.bias, True),
            "batch_first": (self.batch_first, False),
            "dropout": (self.dropout, 0.0),
            "bidirectional": (self.bidirectional, False),
            "proj_size": (self.proj_size, 0),
            "layer_norm": (self.layer_norm, False),
            "forget_bias": (self.forget_bias, None),
            "chrono_init": (self.chrono_init, None),
            "backend": (self.backend, "auto"),
        }
        return s + "".join(f", {k}={v!r}" for k, (v, d) in opts.items() if v != d)

    def _direction_weights(self) -> list[list[reference.DirectionWeights]]:
        out = []
        for layer in range(self.num_layers):
            dirs = []
            for sfx in self._suffixes():

                def get(name: str, sfx: str = sfx, layer: int = layer) -> Tensor | None:
                    return getattr(self, f"{name}_l{layer}{sfx}", None)

                w_ih, w_hh = get("weight_ih"), get("weight_hh")
                assert w_ih is not None and w_hh is not None
                dirs.append(
                    reference.DirectionWeights(
                        w_ih=w_ih,
                        w_hh=w_hh,
                        b_ih=get("bias_ih"),
                        b_hh=get("bias_hh"),
                        w_hr=get("weight_hr"),
                        ln_ih=get("ln_ih_weight"),
                        ln_hh=get("ln_hh_weight"),
                        ln_c_weight=get("ln_c_weight"),
                        ln_c_bias=get("ln_c_bias"),
                    )
                )
            out.append(dirs)
        return out

    # ------------------------------------------------------------------ dispatch
    def plan(self, input: Tensor | PackedSequence, *, lengths: Tensor | Sequence[int] | None = None) -> str:
        """The backend that :meth:`forward` would use for ``input`` (and ``lengths``, as given to
        :meth:`forward`) now: ``"reference"``, ``"fused"``, ``"layerwise"`` or ``"ln_kernel"``.

        This is the one dispatch point (rule: :func:`choose_backend`); it depends on the input's device
        and dtype, CUDA autocast, whether autograd records (grad mode on and the input or a
        parameter requiring grad), and whether a padded batch has lengths. See the module docs for the reasons.
        """
        x = input.data if isinstance(input, PackedSequence) else input
        half = x.dtype in (torch.float16, torch.bfloat16) or (x.is_cuda and torch.is_autocast_enabled("cuda"))
        # whether autograd records matters only for a LayerNorm LSTM off the GPU: not looked up otherwise
        records = (
            self.layer_norm
            and not x.is_cuda
            and torch.is_grad_enabled()
            and (x.requires_grad or any(p.requires_grad for p in self.parameters()))
        )
        return choose_backend(
            self.backend,
            layer_norm=self.layer_norm,
            device_type=x.device.type,
            half_precision=half,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            proj_size=self.proj_size,
            records_grad=records,
            hidden_size=self.hidden_size,
            has_lengths=lengths is not None or isinstance(input, PackedSequence),
        )

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: State | None = None,
        *,
        lengths: Tensor | Sequence[int] | None = None,
    ) -> tuple[Tensor | PackedSequence, State]:
        """Run the LSTM over whole sequences.

        Args:
            input: (T, B, I), or (B, T, I) with ``batch_first``, or unbatched (T, I), or a
                PackedSequence.
            hx: optional initial ``(h_0, c_0)``, each (L*D, B, P) and (L*D, B, H) ((L*D, P) and
                (L*D, H) for unbatched input), in the batch's own order; zeros if omitted.
            lengths: optional (B,) valid lengths of a padded batch, each in [1, T]. Outputs past
                each length are zero, and h_n/c_n are each sequence's states at its own last valid
                step (the reverse direction starts there). Not with a PackedSequence.

        Returns:
            ``(output, (h_n, c_n))``: output (T, B, D*P) (batch_first: (B, T, D*P); unbatched
            (T, D*P); packed in, packed out), h_n (L*D, B, P), c_n (L*D, B, H).
        """
        if isinstance(input, PackedSequence):
            if lengths is not None:
                raise ValueError("lengths= is for padded tensors; a PackedSequence carries its own")
            return self._forward_packed(input, hx)
        if input.dim() not in (2, 3):
            raise ValueError(
                f"LSTM: expected input of 2 (unbatched T, I) or 3 dimensions, got shape {tuple(input.shape)}"
            )
        batched = input.dim() == 3
        if not batched:
            if lengths is not None:
                raise ValueError("lengths= needs a batched (3-D) input")
            x = input.unsqueeze(1)
        else:
            x = input.transpose(0, 1) if self.batch_first else input
        h0, c0 = self._initial_state(x, hx, batched)
        lens = self._check_lengths(lengths, x.shape[0], x.shape[1])
        out, h_n, c_n = self._run(x, h0, c0, lens)
        if not batched:
            return out.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        if self.batch_first:
            out = out.transpose(0, 1)
        return out, (h_n, c_n)

    def step(self, x_t: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One time step through every layer, with the module's weights (unidirectional only).

        Args:
            x_t: (B, I) input at this step.
            state: ``(h, c)``, each (L, B, P) and (L, B, H), from the previous step or
                :meth:`forward`; zeros if None.

        Returns:
            ``(h_t, (h, c))``: the top layer's output (B, P) and the new states.
        """
        if self.bidirectional:
            raise ValueError("step() needs a unidirectional LSTM: the reverse direction reads the future")
        if x_t.dim() != 2:
            raise ValueError(f"step: expected x_t of shape (B, {self.input_size}), got {tuple(x_t.shape)}")
        x = x_t.unsqueeze(0)
        h0, c0 = self._initial_state(x, state, batched=True)
        if self.plan(x) in ("fused", "layerwise") and self.proj_size == 0:
            return self._cell_steps(x_t, h0, c0)
        out, h_n, c_n = self._run(x, h0, c0, None)
        return out[0], (h_n, c_n)

    def _cell_steps(self, x_t: Tensor, h0: Tensor, c0: Tensor) -> tuple[Tensor, State]:
        """One step of a plain unidirectional stack with the fused cell kernel (one GEMM pair and one
        pointwise kernel per layer on CUDA) instead of a whole sequence call of one step.
        x_t (B, I); h0, c0 (L, B, H). Returns the top output (B, H) and the new (h, c), each (L, B, H)."""
        self._check_input_size(x_t.shape[-1])
        hs, cs = [], []
        inp = x_t
        for layer, block in enumerate(self.all_weights):
            b_ih, b_hh = (block[2], block[3]) if self.bias else (None, None)
            h, c = torch.lstm_cell(inp, (h0[layer], c0[layer]), block[0], block[1], b_ih, b_hh)
            hs.append(h)
            cs.append(c)
            inp = h
            if self.dropout > 0.0 and self.training and layer < self.num_layers - 1:
                inp = torch.nn.functional.dropout(inp, p=self.dropout, training=True)
        return inp, (torch.stack(hs), torch.stack(cs))

    # ------------------------------------------------------------------ internals
    def _fused_config(self) -> fused.FusedConfig:
        return fused.FusedConfig(
            has_bias=self.bias,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            dropout=self.dropout,
            training=self.training,
        )

    def _run(
        self, x: Tensor, h0: Tensor, c0: Tensor, lengths: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """x (T, B, I) time-major; lengths (B,) CPU int64 or None (= all full)."""
        self._check_input_size(x.shape[-1])
        plan = self.plan(x, lengths=lengths)
        if plan in ("fused", "layerwise") and x.is_cuda and cudnn_weights.cudnn_usable(self._flat_weights):
            return self._run_cudnn(plan, x, h0, c0, lengths)
        if plan in ("fused", "layerwise") and x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            return _cpu_autocast(lambda *a: self._run_native(plan, *a), x, h0, c0, lengths)
        return self._run_native(plan, x, h0, c0, lengths)

    def _run_native(
        self, plan: str, x: Tensor, h0: Tensor, c0: Tensor, lengths: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`_run` once the device-specific paths are decided."""
        if plan == "fused":
            cfg = self._fused_config()
            if lengths is None:
                return fused.run_padded(x, h0, c0, self._flat_weights, cfg)
            return fused.run_lengths(x, lengths, h0, c0, self._flat_weights, cfg)
        if plan == "layerwise":
            return layerwise.run_layers(x, lengths, h0, c0, self.all_weights, self._fused_config())
        if plan == "ln_kernel":
            return ln_lstm.run_stacked(
                x, lengths, h0, c0, self._direction_weights(), dropout=self.dropout, training=self.training
            )
        mask = None if lengths is None else reference.valid_mask(lengths, x.shape[0], x.device)
        return reference.stacked(
            x,
            h0,
            c0,
            self._direction_weights(),
            dropout=self.dropout,
            training=self.training,
            mask=mask,
        )

    def _run_cudnn(
        self, plan: str, x: Tensor, h0: Tensor, c0: Tensor, lengths: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``fused``/``layerwise`` through cuDNN with weights it can read without copying them.

        Under CUDA autocast with fp32 weights the LSTM runs in fp16, as nn.LSTM's autocast wrapper does, but
        with the weights cast once per forward into cuDNN's layout (:func:`cudnn_weights.cast_flat`) and the
        call made outside autocast, so that cuDNN neither casts nor re-packs them. Returns fp16 outputs then
        (nn.LSTM's too). x (T, B, I); lengths (B,) CPU int64 or None.
        """
        dtype = self._cudnn_dtype(x)
        autocast = torch.is_autocast_enabled("cuda")
        with torch.autocast("cuda", enabled=False) if autocast else contextlib.nullcontext():
            if dtype != x.dtype:
                x, h0, c0 = x.to(dtype), h0.to(dtype), c0.to(dtype)
            cfg = self._fused_config()
            if plan == "layerwise":
                return layerwise.run_layers(
                    x, lengths, h0, c0, self.all_weights, cfg, pad_input_to=GPU_FEATURE_MULTIPLE,
                    flat=lambda block, in_size: cudnn_weights.cast_flat(
                        block, dtype, self._flat_config(num_layers=1, input_size=in_size)
                    ),
                )  # fmt: skip
            weights = self._cudnn_flat_weights(dtype)
            if lengths is None:
                return fused.run_padded(x, h0, c0, weights, cfg)
            return fused.run_lengths(x, lengths, h0, c0, weights, cfg)

    def _cudnn_dtype(self, x: Tensor) -> torch.dtype:
        """The dtype a cuDNN call computes in: fp16 under CUDA autocast with fp32 weights (as nn.LSTM), else
        the input's."""
        if torch.is_autocast_enabled("cuda") and self._flat_weights[0].dtype == torch.float32:
            return torch.float16
        return x.dtype

    def _cudnn_flat_weights(self, dtype: torch.dtype) -> list[Tensor]:
        """The whole stack's weights in ``dtype`` as views of one buffer in cuDNN's layout: the parameters
        themselves when they already are (:meth:`flatten_parameters`), else a cast copy through autograd."""
        weights = self._flat_weights
        if dtype == weights[0].dtype and self.__dict__.get("_cudnn_flat", False):
            return weights
        return cudnn_weights.cast_flat(weights, dtype, self._flat_config())

    def _forward_packed(self, packed: PackedSequence, hx: State | None) -> tuple[PackedSequence, State]:
        batch = int(packed.batch_sizes[0])
        h0, c0 = self._initial_state(
            packed.data.new_empty(1, batch, 0), hx, batched=True, dtype_from=packed.data
        )
        self._check_input_size(packed.data.shape[-1])
        if self.plan(packed.data, lengths=packed.batch_sizes) == "fused":
            weights = self._flat_weights
            if packed.data.is_cuda and cudnn_weights.cudnn_usable(weights):
                dtype = self._cudnn_dtype(packed.data)
                with torch.autocast("cuda", enabled=False):
                    out, h_n, c_n = fused.run_packed(
                        packed._replace(data=packed.data.to(dtype)), h0.to(dtype), c0.to(dtype),
                        self._cudnn_flat_weights(dtype), self._fused_config(),
                    )  # fmt: skip
                return out, (h_n, c_n)
            if packed.data.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
                out, h_n, c_n = _cpu_autocast(
                    lambda d, h, c, _: fused.run_packed(packed._replace(data=d), h, c, weights, self._fused_config()),
                    packed.data, h0, c0, None,
                )  # fmt: skip
            else:
                out, h_n, c_n = fused.run_packed(packed, h0, c0, weights, self._fused_config())
            return out, (h_n, c_n)
        x, lengths = pad_packed_sequence(packed)  # (T, B, I) in the caller's order
        y, h_n, c_n = self._run(x, h0, c0, lengths)
        order = packed.sorted_indices
        if order is not None:
            y = y.index_select(1, order)
        steps = torch.arange(batch)[None, :] < packed.batch_sizes[:, None]  # (T, B) sorted order
        data = y[steps.to(y.device)]
        return packed._replace(data=data), (h_n, c_n)

    def _check_input_size(self, size: int) -> None:
        if size != self.input_size:
            raise RuntimeError(
                f"LSTM: input.size(-1) must be equal to input_size. Expected {self.input_size}, got {size}"
            )

    def _initial_state(
        self, x: Tensor, hx: State | None, batched: bool, dtype_from: Tensor | None = None
    ) -> State:
        """Zeros or the caller's (h_0, c_0), checked and given a batch axis. x: (T, B, ·)."""
        ref = x if dtype_from is None else dtype_from
        n, batch = self.num_layers * self.num_directions, x.shape[1]
        want_h, want_c = (n, batch, self.output_size), (n, batch, self.hidden_size)
        if hx is None:
            return (
                torch.zeros(want_h, dtype=ref.dtype, device=ref.device),
                torch.zeros(want_c, dtype=ref.dtype, device=ref.device),
            )
        if not isinstance(hx, tuple | list) or len(hx) != 2:
            raise TypeError("LSTM: hx must be a tuple (h_0, c_0)")
        h0, c0 = hx
        dims = 3 if batched else 2
        if h0.dim() != dims or c0.dim() != dims:
            raise RuntimeError(
                f"LSTM: for {'batched 3-D' if batched else 'unbatched 2-D'} input, h_0 and c_0 should be "
                f"{dims}-D but got ({h0.dim()}-D, {c0.dim()}-D) tensors"
            )
        if not batched:
            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
        # under autocast nn.LSTM takes a state of another float dtype (e.g. a bf16 state from a Linear next to
        # an fp32 embedding) and casts it; so do we, to the input's dtype, which every backend expects
        autocast = torch.is_autocast_enabled(ref.device.type)
        state = []
        for name, t, want in (("h_0", h0, want_h), ("c_0", c0, want_c)):
            if tuple(t.shape) != want:
                raise RuntimeError(f"LSTM: expected {name} of size {want}, got {tuple(t.shape)}")
            if t.dtype != ref.dtype and not (autocast and t.is_floating_point()):
                raise RuntimeError(f"LSTM: {name} has dtype {t.dtype} but the input has {ref.dtype}")
            state.append(t.to(ref.dtype))
        return state[0], state[1]

    @staticmethod
    def _check_lengths(lengths: Tensor | Sequence[int] | None, steps: int, batch: int) -> Tensor | None:
        """Validate ``lengths`` and return them as CPU int64, or None when every sequence is full."""
        if lengths is None:
            return None
        lens = torch.as_tensor(lengths).detach()
        if lens.dtype.is_floating_point or lens.dtype == torch.bool:
            raise TypeError(f"lengths must be integers, got dtype {lens.dtype}")
        lens = lens.to(device="cpu", dtype=torch.long)
        if lens.shape != (batch,):
            raise ValueError(
                f"lengths must have shape ({batch},) (one per sequence), got {tuple(lens.shape)}"
            )
        if batch and (int(lens.min()) < 1 or int(lens.max()) > steps):
            raise ValueError(
                f"every length must be in [1, {steps}] (the padded time axis), got min {int(lens.min())}, "
                f"max {int(lens.max())}"
            )
        if batch == 0 or int(lens.min()) == steps:
            return None
        return lens

    # ------------------------------------------------------------------ Keras import
    @classmethod
    def from_keras(
        cls,
        kernel: np.ndarray | Tensor,
        recurrent_kernel: np.ndarray | Tensor,
        bias: np.ndarray | Tensor | None = None,
        *,
        batch_first: bool = True,
        recurrent_activation: str = "sigmoid",
        activation: str = "tanh",
        dtype: torch.dtype = torch.float32,
        **kwargs: object,
    ) -> LSTM:
        """Build a one-layer LSTM from the arrays a Keras ``LSTM`` layer stores (``layer.get_weights()``).

        Args:
            kernel: (I, 4H), input weights, gate order i, f, c, o (Keras's; the same as i, f, g, o).
            recurrent_kernel: (H, 4H).
            bias: (4H,) or None for ``use_bias=False``. Keras has one bias: it becomes ``bias_ih``
                and ``bias_hh`` is zero.
            batch_first: Keras tensors are (B, T, F), so True by default.
            recurrent_activation, activation: the layer's settings; only Keras's defaults
                ("sigmoid", "tanh") are the equations of this module.
            **kwargs: other constructor options (e.g. ``backend``).

        Keras's output with ``return_sequences=False`` is ``h_n[-1]``; with ``True`` it is
        ``output``.
        """
        if recurrent_activation != "sigmoid" or activation != "tanh":
            raise ValueError(
                "lstm_seq.LSTM computes the gates with sigmoid and the candidate/output with tanh; "
                f"a Keras layer with recurrent_activation={recurrent_activation!r}, activation={activation!r} "
                "(e.g. Keras 1's hard_sigmoid default) has other equations and cannot be imported exactly"
            )
        k = torch.as_tensor(np.asarray(kernel), dtype=dtype)
        r = torch.as_tensor(np.asarray(recurrent_kernel), dtype=dtype)
        if k.dim() != 2 or r.dim() != 2 or k.shape[1] % 4 or r.shape != (k.shape[1] // 4, k.shape[1]):
            raise ValueError(
                f"expected kernel (I, 4H) and recurrent_kernel (H, 4H), got {tuple(k.shape)} and {tuple(r.shape)}"
            )
        hidden = r.shape[0]
        b = None if bias is None else torch.as_tensor(np.asarray(bias), dtype=dtype)
        if b is not None and b.shape != (4 * hidden,):
            raise ValueError(f"expected bias of shape ({4 * hidden},), got {tuple(b.shape)}")
        module = cls(k.shape[0], hidden, bias=b is not None, batch_first=batch_first, dtype=dtype, **kwargs)  # type: ignore[arg-type]
        with torch.no_grad():
            module.weight_ih_l0.copy_(k.t())
            module.weight_hh_l0.copy_(r.t())
            if b is not None:
                module.bias_ih_l0.copy_(b)
                module.bias_hh_l0.zero_()
        return module


# Whether this CPU runs PyTorch's LSTM kernel under bf16/fp16 autocast: oneDNN builds that kernel only on CPUs
# with the matching instructions and fails elsewhere ("could not create a primitive descriptor"; e.g. the AMD EPYC
# of the development machines, 2026-12-04). None = not tried yet in this process.
_CPU_HALF_LSTM: list[bool | None] = [None]


def _cpu_autocast(
    run: Callable[[Tensor, Tensor, Tensor, Tensor | None], tuple],
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    lengths: Tensor | None,
) -> tuple:
    """``run(x, h0, c0, lengths)`` under CPU autocast: as nn.LSTM (in the autocast dtype) where this CPU's
    kernel supports it, else in float32 with autocast off (a warning, once per process) instead of failing."""
    if _CPU_HALF_LSTM[0] is not False:
        try:
            result = run(x, h0, c0, lengths)
            _CPU_HALF_LSTM[0] = True
            return result
        except RuntimeError as exc:
            if _CPU_HALF_LSTM[0] or "primitive descriptor" not in str(exc):
                raise
            _CPU_HALF_LSTM[0] = False
            warnings.warn(
                "this CPU's LSTM kernel cannot run under bf16/fp16 autocast (oneDNN: no primitive for it); "
                "lstm_seq.LSTM runs in float32 there instead",
                stacklevel=3,
            )
    with torch.autocast("cpu", enabled=False):
        return run(x.float(), h0.float(), c0.float(), lengths)


def _check_sizes(input_size: int, hidden_size: int, num_layers: int, dropout: float, proj_size: int) -> None:
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not isinstance(dropout, int | float) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
        raise ValueError(f"dropout must be a number in [0, 1], got {dropout!r}")
    if not isinstance(proj_size, int) or proj_size < 0:
        raise ValueError(f"proj_size must be a non-negative int, got {proj_size!r}")
    if proj_size >= hidden_size:
        raise ValueError(f"proj_size ({proj_size}) must be smaller than hidden_size ({hidden_size})")
