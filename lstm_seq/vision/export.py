"""Export the captioner for serving: the CNN encoder and one decoder step as ONNX, plus metadata.

- ``caption_encoder.onnx``: ``images (B, 3, S, S)`` float32, normalised as ``metadata["transform"]`` says →
  ``grid (B, L, C)``, ``pooled (B, C)``, and what the decoder starts from: ``h0``, ``c0`` (num_layers, B, H)
  and, for the attention decoder, ``keys (B, L, A)`` (the grid projected into the attention space once).
- ``caption_decoder_step.onnx``: ``tokens (B,)`` int64, ``h``, ``c`` (num_layers, B, H) and, for the attention
  decoder, ``grid`` and ``keys`` → ``logits (B, V)``, the new ``h``, ``c`` and (attention) ``alpha (B, L)``.
  It is :meth:`~lstm_seq.vision.decoder.CaptionDecoder.step`: the shared ``lstm_seq.LSTM.step`` with its
  ``(h, c)`` state and the soft attention. A search starts with ``tokens = <start>`` and the encoder's state.

The batch is dynamic in both (a beam search runs the step on B·k rows). ``metadata.json`` holds the vocabulary
(special ids included), the image transform, the encoder and decoder settings, the search defaults of the
checkpoint and the opset and library versions. onnxruntime checks neither an empty batch (a crash) nor the token
range (ONNX ``Gather`` reads -1 as the last word): :class:`lstm_seq.onnx_graph.OnnxGraph` runs the files with both
checked.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from lstm_seq.export_files import ExportedFiles, file_opset, library_versions
from lstm_seq.vision.module import SEARCH_KEYS

if TYPE_CHECKING:
    from lstm_seq.vision.module import CaptionModule

__all__ = ["AttentionDecoderStep", "CaptionDecoderStep", "CaptionEncoderGraph", "export_captioner"]

FORMAT = "lstm_seq-caption-onnx/1"


class CaptionEncoderGraph(nn.Module):
    """images (B, 3, S, S) → grid (B, L, C), pooled (B, C), h0, c0 (num_layers, B, H)[, keys (B, L, A)]."""

    def __init__(self, module: CaptionModule) -> None:
        super().__init__()
        self.encoder, self.decoder = module.encoder, module.decoder
        self.eval()

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        grid, pooled = self.encoder(images)
        memory = self.decoder.prepare(grid, pooled)
        h0, c0 = self.decoder.init_state(memory)
        if self.decoder.has_attention:
            return grid, pooled, h0, c0, memory["keys"]
        return grid, pooled, h0, c0


class CaptionDecoderStep(nn.Module):
    """Show-and-tell: (tokens (B,), h, c (num_layers, B, H)) → (logits (B, V), h, c)."""

    def __init__(self, module: CaptionModule) -> None:
        super().__init__()
        self.decoder = module.decoder
        self.eval()

    def forward(self, tokens: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, ...]:
        logits, (h, c), _ = self.decoder.step(tokens, (h, c), {})
        return logits, h, c


class AttentionDecoderStep(CaptionDecoderStep):
    """(tokens (B,), h, c (num_layers, B, H), grid (B, L, C), keys (B, L, A)) →
    (logits (B, V), h, c, alpha (B, L))."""

    def forward(  # type: ignore[override]
        self, tokens: Tensor, h: Tensor, c: Tensor, grid: Tensor, keys: Tensor
    ) -> tuple[Tensor, ...]:
        logits, (h, c), alpha = self.decoder.step(tokens, (h, c), {"grid": grid, "keys": keys})
        return logits, h, c, alpha


def _metadata(module: CaptionModule, opset: int) -> dict[str, Any]:
    hp = dict(module.hparams)
    v = module.vocab
    attention = module.decoder.has_attention
    step_in = ["tokens", "h", "c"] + (["grid", "keys"] if attention else [])
    return {
        "format": FORMAT,
        "pipeline": "caption",
        "vocab": {
            **v.to_dict(),
            "start_id": v.start_id,
            "end_id": v.end_id,
            "pad_id": v.pad_id,
            "unk_id": v.unk_id,
        },
        "transform": module.transform.to_dict(),
        "encoder": {k: val for k, val in dict(hp["encoder"]).items() if k != "weights"},
        "decoder": dict(hp["decoder"]),
        "attention": attention,
        "search": {k: module.settings[k] for k in SEARCH_KEYS},  # the checkpoint's search settings
        "opset": opset,
        "versions": library_versions(),
        "graphs": {
            "encoder": {
                "inputs": ["images"],
                "outputs": ["grid", "pooled", "h0", "c0"] + (["keys"] if attention else []),
            },
            "decoder_step": {
                "inputs": step_in,
                "outputs": ["logits", "h", "c"] + (["alpha"] if attention else []),
            },
        },
    }


def export_captioner(
    module: CaptionModule, out_dir: str | os.PathLike[str], *, opset: int = 18
) -> ExportedFiles:
    """Write the encoder and the decoder step of ``module`` as ONNX with ``metadata.json``.

    Args:
        module: a loaded captioner (e.g. :meth:`CaptionModule.load`); its weights are not changed.
        out_dir: created if missing; files of the same names are replaced.
        opset: ONNX opset (≥ 17; see :func:`~lstm_seq.audio.export.export_acoustic_model`).
    Returns:
        the paths written (``onnx["encoder"]``, ``onnx["decoder_step"]``, ``metadata``).
    """
    if opset < 17:
        raise ValueError(f"opset must be >= 17, got {opset}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    was_training = module.training
    module.eval()
    dyn = torch.export.Dim.DYNAMIC
    size = module.transform.size
    files: dict[str, Path] = {}
    try:
        enc = copy.deepcopy(CaptionEncoderGraph(module)).cpu()  # a CPU copy: the module stays where it is
        images = torch.randn(2, 3, size, size)
        enc_out = ["grid", "pooled", "h0", "c0"] + (["keys"] if module.decoder.has_attention else [])
        files["encoder"] = out / "caption_encoder.onnx"
        with torch.no_grad():
            torch.onnx.export(
                enc, (images,), str(files["encoder"]), dynamo=True, opset_version=opset,
                input_names=["images"], output_names=enc_out, dynamic_shapes=({0: dyn},),
                external_data=False, verbose=False,
            )  # fmt: skip
            first = enc(images)
        step_cls = AttentionDecoderStep if module.decoder.has_attention else CaptionDecoderStep
        step = copy.deepcopy(step_cls(module)).cpu()
        tokens = torch.full((2,), module.vocab.start_id, dtype=torch.long)
        h0, c0 = first[2], first[3]
        args: tuple[Tensor, ...] = (tokens, h0, c0)
        shapes: list[dict[int, Any]] = [{0: dyn}, {1: dyn}, {1: dyn}]
        names = ["tokens", "h", "c"]
        if module.decoder.has_attention:
            args += (first[0], first[4])
            shapes += [{0: dyn}, {0: dyn}]
            names += ["grid", "keys"]
        out_names = ["logits", "h_out", "c_out"] + (["alpha"] if module.decoder.has_attention else [])
        files["decoder_step"] = out / "caption_decoder_step.onnx"
        with torch.no_grad():
            torch.onnx.export(
                step, args, str(files["decoder_step"]), dynamo=True, opset_version=opset, input_names=names,
                output_names=out_names, dynamic_shapes=tuple(shapes),
                external_data=False, verbose=False,
            )  # fmt: skip
    finally:
        module.train(was_training)
    meta = _metadata(module, opset)
    meta["graphs"]["decoder_step"]["outputs"] = out_names
    meta["files"] = {k: p.name for k, p in files.items()}
    meta["opsets"] = {k: file_opset(p) for k, p in files.items()}
    meta_path = out / "metadata.json"
    meta_path.write_text(json.dumps(meta, indent=1))
    return ExportedFiles(out, files, meta_path)
