"""Export the acoustic model for serving: ONNX graphs (and a ``torch.export`` program) plus metadata.

Two graphs, both with a dynamic batch and a dynamic length:

- ``acoustic_features.onnx``: ``features (B, T, F)`` float32 — the normalised MFCCs the model reads, zero past
  each length — and ``frames (B,)`` int64 → ``log_probs (B, T', V)`` float32 and ``out_lengths (B,)`` int64;
- ``acoustic_waveform.onnx``: ``waveform (B, N)`` float32 at the feature sample rate, zero-padded, and
  ``wave_lengths (B,)`` int64 samples (each clip at least ``n_fft`` samples) → the same outputs; the STFT,
  mel filterbank, DCT, deltas and CMVN (per utterance, or the checkpoint's global statistics) are in the graph.

Only the first ``out_lengths[b]`` steps of row ``b`` are meaningful; they equal the same utterance run alone.
The LSTM is one ONNX ``LSTM`` node per layer with ``sequence_lens`` (:mod:`lstm_seq.lstm_export`), so a padded
batch gives each utterance the numbers it gets alone, bidirectional models included.

``metadata.json`` beside them holds what a server needs to turn log-probabilities into text and to compute
the features itself: the vocabulary (index 0 the CTC blank), every feature setting (and the global CMVN
statistics), the model sizes and subsampling, the opset and library versions; ``decoding.json`` the
language-model source, lexicon and tuned LM weight / word score the checkpoint holds.

Exporting needs ``onnx`` and ``onnxscript`` (``pip install lstm_seq[export]``); running the files needs only
``onnxruntime``. A batch of size 0 crashes onnxruntime on these graphs (SIGSEGV): run them through
:class:`lstm_seq.onnx_graph.OnnxGraph`, which refuses it with an error, or skip empty batches yourself.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from lstm_seq.audio.features import MFCC, cmvn
from lstm_seq.audio.model import _mask_time
from lstm_seq.export_files import ExportedFiles, file_opset, library_versions
from lstm_seq.lstm_export import lstm_padded, onnx_translation_table, onnx_weights

if TYPE_CHECKING:
    from lstm_seq.audio.module import ASRModule

__all__ = ["AcousticGraph", "export_acoustic_model", "export_metadata"]

FORMAT = "lstm_seq-asr-onnx/1"


def _deltas(x: Tensor, win: int) -> Tensor:
    """``torchaudio.functional.compute_deltas(x, win, mode="replicate")`` as shifted sums (exports with any
    batch and length). x: (B, C, T) → (B, C, T)."""
    n = (win - 1) // 2
    denom = n * (n + 1) * (2 * n + 1) / 3
    t = x.shape[-1]
    padded = torch.cat([x[..., :1].expand(-1, -1, n), x, x[..., -1:].expand(-1, -1, n)], dim=-1)
    out = torch.zeros_like(x)
    for k in range(1, n + 1):
        out = out + k * (padded[..., n + k : n + k + t] - padded[..., n - k : n - k + t])
    return out / denom


def _add_deltas(feats: Tensor, frames: Tensor, win: int) -> Tensor:
    """:func:`lstm_seq.audio.features.add_deltas` with :func:`_deltas`: (B, T, C) → (B, T, 3C)."""
    t = torch.arange(feats.shape[1], device=feats.device)
    idx = torch.minimum(t[None, :], (frames - 1).clamp(min=0)[:, None])  # (B, T)
    x = torch.gather(feats, 1, idx[..., None].expand_as(feats)).transpose(1, 2)  # (B, C, T)
    d1 = torch.gather(_deltas(x, win), 2, idx[:, None, :].expand_as(x))
    d2 = _deltas(d1, win)
    return torch.cat([x, d1, d2], dim=1).transpose(1, 2)


class AcousticGraph(nn.Module):
    """What is exported: the module's acoustic model in eval mode, optionally behind its MFCC front end.

    ``forward(x, lengths) -> (log_probs (B, T', V), out_lengths (B,))`` where ``x`` is features (B, T, F)
    with ``lengths`` frames, or with ``from_waveform`` a waveform (B, N) with ``lengths`` samples.
    Shares the module's weights (the LSTM's are copied into ONNX layout once, as buffers).
    """

    def __init__(self, module: ASRModule, from_waveform: bool = False) -> None:
        super().__init__()
        acoustic = module.acoustic
        self.subsample, self.norm, self.output = acoustic.subsample, acoustic.norm, acoustic.output
        self.featurizer: MFCC | None = module.featurizer if from_waveform else None
        if from_waveform:
            n_fft = module.feature_cfg.n_fft
            k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
            angle = 2 * torch.pi * k * torch.arange(n_fft, dtype=torch.float64)[None, :] / n_fft
            window = module.featurizer.window.double().cpu()
            basis = torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window])  # (2·n_freqs, n_fft)
            self.register_buffer("dft", basis[:, None, :].float(), persistent=False)
        self.n_layers = acoustic.lstm.num_layers
        for k, (w, r, b) in enumerate(onnx_weights(acoustic.lstm)):
            self.register_buffer(f"lstm_w{k}", w.clone(), persistent=False)
            self.register_buffer(f"lstm_r{k}", r.clone(), persistent=False)
            self.register_buffer(f"lstm_b{k}", b.clone(), persistent=False)
        self.eval()

    def features(self, wave: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """The front end of :class:`~lstm_seq.audio.features.MFCC` (no VTLP): (B, N), (B,) → (B, T, F), (B,)."""
        fe = self.featurizer
        assert fe is not None
        cfg = fe.cfg
        x = wave.float()[:, None, :]  # (B, 1, N)
        if cfg.center:
            x = torch.nn.functional.pad(x, (cfg.n_fft // 2, cfg.n_fft // 2), mode="reflect")
        # the windowed DFT as one strided convolution (onnxruntime's STFT operator is a direct DFT per frame,
        # 4-6x slower here for n_fft=400); the same frames as torch.stft(center=False) to float rounding
        spec = torch.nn.functional.conv1d(x, self.dft, stride=cfg.hop_length)  # (B, 2·n_freqs, T)
        n_freqs = cfg.n_fft // 2 + 1
        power = spec[:, :n_freqs] ** 2 + spec[:, n_freqs:] ** 2  # (B, n_freqs, T)
        feats = torch.log(torch.matmul(power.transpose(1, 2), fe.fbanks).clamp(min=cfg.log_floor)) @ fe.dct
        if cfg.center:
            frames = lengths // cfg.hop_length + 1
        else:
            frames = torch.where(lengths >= cfg.n_fft, (lengths - cfg.n_fft) // cfg.hop_length + 1, 0)
        frames = frames.clamp(max=feats.shape[1])
        if cfg.deltas:
            feats = _add_deltas(feats, frames, cfg.delta_window)
        mask = (torch.arange(feats.shape[1], device=feats.device)[None] < frames[:, None])[..., None]
        if cfg.cmvn == "utterance":
            return cmvn(feats, frames), frames
        if cfg.cmvn == "global":
            feats = (feats - fe.cmvn_mean) / fe.cmvn_std
        return feats * mask, frames

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        if self.featurizer is not None:
            x, lengths = self.features(x, lengths)
        y, out_lengths = self.subsample(x, lengths)
        out_lengths = out_lengths.clamp(min=1)
        y = _mask_time(self.norm(y), out_lengths, dim=1)
        weights = [
            (getattr(self, f"lstm_w{k}"), getattr(self, f"lstm_r{k}"), getattr(self, f"lstm_b{k}"))
            for k in range(self.n_layers)
        ]
        y = lstm_padded(y, out_lengths, weights)
        return self.output(y).float().log_softmax(-1), out_lengths


def _decoding_dict(module: ASRModule) -> dict[str, Any]:
    """The LM source, lexicon and tuned weights the module holds (older modules: transcripts + settings)."""
    setup = getattr(module, "decoding", None)
    if setup is not None and hasattr(setup, "to_dict"):
        return dict(setup.to_dict())
    return {
        "sentences": list(getattr(module, "lm_texts", [])),
        **{k: v for k, v in dict(getattr(module, "decode_settings", {})).items()},
    }


def export_metadata(module: ASRModule, opset: int) -> dict[str, Any]:
    """The ``metadata.json`` content of :func:`export_acoustic_model` (JSON-serialisable)."""
    fe = module.featurizer
    features = module.feature_cfg.to_dict()
    if module.feature_cfg.cmvn == "global":
        features["cmvn_mean"] = fe.cmvn_mean.tolist()
        features["cmvn_std"] = fe.cmvn_std.tolist()
        features["cmvn_frames"] = int(fe.cmvn_frames)
    decoding = _decoding_dict(module)
    return {
        "format": FORMAT,
        "pipeline": "asr",
        "vocab": {"tokens": list(module.vocab.tokens), "blank": module.vocab.blank, **module.vocab.to_dict()},
        "features": features,
        "feature_dim": module.feature_cfg.dim,
        "model": module.model_cfg.to_dict(),
        "subsample": module.model_cfg.subsample,
        "decode": {k: decoding.get(k) for k in ("lm_weight", "word_score")},
        "opset": opset,
        "versions": library_versions(),
        "graphs": {
            "features": {
                "inputs": {"features": "float32 (B, T, F) normalised MFCC", "frames": "int64 (B,)"},
                "outputs": {"log_probs": "float32 (B, T', V)", "out_lengths": "int64 (B,)"},
            },
            "waveform": {
                "inputs": {"waveform": "float32 (B, N), N >= n_fft", "wave_lengths": "int64 (B,) samples"},
                "outputs": {"log_probs": "float32 (B, T', V)", "out_lengths": "int64 (B,)"},
            },
        },
    }


def _example(module: ASRModule, from_waveform: bool) -> tuple[Tensor, Tensor]:
    cfg = module.feature_cfg
    if from_waveform:
        n = cfg.sample_rate  # 1 s and 0.75 s: a padded batch of two
        g = torch.Generator().manual_seed(0)
        return torch.randn(2, n, generator=g) * 0.1, torch.tensor([n, 3 * n // 4])
    return torch.randn(2, 64, cfg.dim), torch.tensor([64, 41])


def export_acoustic_model(
    module: ASRModule,
    out_dir: str | os.PathLike[str],
    *,
    opset: int = 18,
    waveform: bool = True,
    torch_export: bool = True,
) -> ExportedFiles:
    """Write the acoustic model of ``module`` as ONNX (features → log-probs, and waveform → log-probs) with
    ``metadata.json`` and ``decoding.json``; optionally ``torch.export`` programs (``*.pt2``, loadable with
    ``torch.export.load`` after ``import lstm_seq.lstm_export``).

    Args:
        module: a loaded recogniser (e.g. :meth:`ASRModule.load`); its weights are not changed.
        out_dir: created if missing; existing files of the same names are replaced.
        opset: ONNX opset (≥ 17). 18 is what the exporter writes; a lower one is converted afterwards, which
            can fail (the file then keeps 18): ``metadata["opsets"]`` says what each file holds.
        waveform: also export the graph with the MFCC front end inside.
        torch_export: also save ``torch.export`` programs of the same graphs.
    Returns:
        the paths written.
    """
    if opset < 17:
        raise ValueError(f"opset must be >= 17 (the STFT and LayerNorm operators), got {opset}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    was_training = module.training
    module.eval()
    onnx_files: dict[str, Path] = {}
    extra: dict[str, Path] = {}
    dyn = torch.export.Dim.DYNAMIC
    try:
        for name, from_wave in (("features", False), ("waveform", True)):
            if from_wave and not waveform:
                continue
            # a CPU copy: the module itself stays where it is
            graph = copy.deepcopy(AcousticGraph(module, from_waveform=from_wave)).cpu()
            example = _example(module, from_wave)
            in_names = ["waveform", "wave_lengths"] if from_wave else ["features", "frames"]
            shapes = ({0: dyn, 1: dyn}, {0: dyn})
            path = out / f"acoustic_{name}.onnx"
            with torch.no_grad():
                torch.onnx.export(
                    graph, example, str(path), dynamo=True, opset_version=opset, input_names=in_names,
                    output_names=["log_probs", "out_lengths"], dynamic_shapes=shapes,
                    custom_translation_table=onnx_translation_table(), external_data=False,
                    verbose=False, report=False,
                )  # fmt: skip
            onnx_files[name] = path
            if torch_export:
                with torch.no_grad():
                    program = torch.export.export(graph, example, dynamic_shapes=shapes)
                extra[f"torch_export_{name}"] = out / f"acoustic_{name}.pt2"
                torch.export.save(program, extra[f"torch_export_{name}"])
    finally:
        module.train(was_training)
    meta_path = out / "metadata.json"
    meta = export_metadata(module, opset)
    meta["files"] = {k: p.name for k, p in {**onnx_files, **extra}.items()}
    meta["opsets"] = {k: file_opset(p) for k, p in onnx_files.items()}
    meta_path.write_text(json.dumps(meta, indent=1))
    extra["decoding"] = out / "decoding.json"
    extra["decoding"].write_text(json.dumps(_decoding_dict(module)))
    return ExportedFiles(out, onnx_files, meta_path, extra)
