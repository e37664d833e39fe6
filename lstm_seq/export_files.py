"""What an export writes besides its graphs, shared by the speech and the captioning export
(:mod:`lstm_seq.audio.export`, :mod:`lstm_seq.vision.export`): the list of files written
(:class:`ExportedFiles`), and the library versions and ONNX opsets that ``metadata.json`` records."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from lstm_seq.outputs import write_metrics

__all__ = ["ExportedFiles", "file_opset", "library_versions"]


@dataclass(frozen=True)
class ExportedFiles:
    """Where :func:`~lstm_seq.audio.export.export_acoustic_model` or
    :func:`~lstm_seq.vision.export.export_captioner` wrote its files.

    Attributes:
        out_dir: the folder.
        onnx: graph name → ONNX file (``"features"``, ``"waveform"``; captioning: ``"encoder"``, ``"decoder_step"``).
        metadata: ``metadata.json``.
        extra: other files by name (``"decoding"``: decoding.json; ``"torch_export"``: the ``.pt2`` programs).
    """

    out_dir: Path
    onnx: dict[str, Path]
    metadata: Path
    extra: dict[str, Path] = field(default_factory=dict)

    def record(self, run_dir: Path) -> dict[str, int]:
        """``pipelines.<pipeline>.export``'s report: print each file written and record ``export/files`` (the number of ONNX
        graphs) in ``<run_dir>/metrics.json``; returns that metric."""
        for f in [*self.onnx.values(), self.metadata, *self.extra.values()]:
            print(f"wrote {f}")
        metrics = {"export/files": len(self.onnx)}
        write_metrics(run_dir, metrics)
        return metrics


def library_versions() -> dict[str, str]:
    """The versions of torch, lstm_seq and (when installed) onnx and onnxscript, for export metadata."""
    import lstm_seq

    out = {"torch": torch.__version__, "lstm_seq": lstm_seq.__version__}
    for name in ("onnx", "onnxscript"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:  # pragma: no cover - export itself needs both
            pass
    return out


def file_opset(path: Path) -> int:
    """The default-domain opset an ONNX file declares."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
