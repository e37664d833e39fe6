"""Run an exported ONNX graph (``acoustic_*.onnx``, ``caption_*.onnx``) in onnxruntime with its inputs checked
first: :class:`OnnxGraph`.

onnxruntime itself does not check what these graphs cannot take: a batch of size 0 (or an empty time axis)
makes the exported LSTM graphs crash the whole process (a segmentation fault, no Python exception), and a
token id of -1 given to the caption decoder step is read as the last word of the vocabulary (ONNX ``Gather``
counts negative indices from the end). :meth:`OnnxGraph.run` refuses both with a ``ValueError`` that names
the file and the input; a server calling ``onnxruntime.InferenceSession`` directly must check them itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["OnnxGraph"]

TOKEN_INPUTS = ("tokens",)  # integer inputs that index the vocabulary (the caption decoder step)


class OnnxGraph:
    """One exported graph in an ``onnxruntime.InferenceSession`` (imported on first use).

    Args:
        path: the ``.onnx`` file.
        providers: onnxruntime execution providers (default: the CPU).
        options: an ``onnxruntime.SessionOptions`` (threads, optimisation level), or None.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        providers: Sequence[str] = ("CPUExecutionProvider",),
        options: Any = None,
    ) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), options, providers=list(providers))
        self.inputs = {i.name: i.shape for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]
        logits = {o.name: o.shape for o in self.session.get_outputs()}.get("logits")
        # (B, V) logits with a fixed V: token inputs must lie in [0, V)
        self.vocab_size = logits[-1] if logits and isinstance(logits[-1], int) else None

    def check(self, inputs: Mapping[str, np.ndarray]) -> None:
        """Raise ``ValueError`` (naming the file and the input) for missing or unknown inputs, a wrong number of
        dimensions, an empty dynamic axis (batch or time) or a token id outside the vocabulary."""
        missing, unknown = set(self.inputs) - set(inputs), set(inputs) - set(self.inputs)
        if missing or unknown:
            raise ValueError(
                f"{self.path}: inputs {sorted(inputs)} do not match the graph's {sorted(self.inputs)}"
            )
        for name, shape in self.inputs.items():
            x = np.asarray(inputs[name])
            if x.ndim != len(shape):
                raise ValueError(
                    f"{self.path}: input {name!r} must have {len(shape)} dimensions, got shape {x.shape}"
                )
            for axis, dim in enumerate(shape):
                if not isinstance(dim, int) and x.shape[axis] == 0:  # a dynamic axis (batch, time) left empty
                    raise ValueError(
                        f"{self.path}: input {name!r} has an empty axis {axis} (shape {x.shape}): these graphs "
                        "need at least one row and one step (onnxruntime crashes on size 0); skip the call"
                    )
            if name in TOKEN_INPUTS and self.vocab_size is not None and x.size:
                lo, hi = int(x.min()), int(x.max())
                if lo < 0 or hi >= self.vocab_size:
                    raise ValueError(
                        f"{self.path}: input {name!r} holds token ids in [{lo}, {hi}], outside the vocabulary "
                        f"[0, {self.vocab_size})"
                    )

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """:meth:`check` the inputs, run the graph, return its outputs by name."""
        self.check(inputs)
        values = self.session.run(self.outputs, {k: np.asarray(v) for k, v in inputs.items()})
        return dict(zip(self.outputs, values, strict=True))
