"""Transcribe every audio file under a folder into ``transcripts.jsonl``.

One JSON object per file: ``{"path", "text", "duration"}``, or ``{"path", "error"}`` for a file
that cannot be read (the run goes on). Files longer than ``chunk_s`` are cut into chunks at the
quietest 10-ms frame near each boundary, decoded chunk by chunk and joined.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lstm_seq.audio.data.io import AudioReadError, find_audio_files, is_silent, load_audio
from lstm_seq.audio.decoding.decode import greedy_decode
from lstm_seq.audio.module import ASRModule

log = logging.getLogger(__name__)


def chunk_bounds(wave: np.ndarray, chunk: int, search: int, hop: int) -> list[tuple[int, int]]:
    """Split ``wave`` (N,) into [start, end) sample ranges of at most ``chunk`` samples, each cut
    at the lowest-energy ``hop``-sample frame within the last ``search`` samples of the chunk;
    starts are multiples of ``hop`` so chunk features align with whole-clip frames."""
    n = len(wave)
    bounds: list[tuple[int, int]] = []
    start = 0
    while n - start > chunk:
        lo = start + max(hop, chunk - search)
        hi = start + chunk
        lo, hi = lo - lo % hop, hi - hi % hop
        frames = wave[lo:hi].reshape(-1, hop) if hi > lo else np.zeros((0, hop), wave.dtype)
        cut = lo + int(np.argmin((frames**2).sum(1))) * hop if len(frames) else hi
        cut = max(cut, start + hop)
        bounds.append((start, cut))
        start = cut
    bounds.append((start, n))
    return bounds


class Transcriber:
    """Decode waveforms with a trained :class:`ASRModule` and, when given, a beam-search decoder (else greedy).

    Args:
        module: the recogniser (in eval mode).
        decoder: ``(log_probs (B, T, V), lengths (B,)) -> B texts``, e.g. from
            :meth:`~lstm_seq.audio.decoding.setup.DecodingSetup.decoder`; None: greedy.
        chunk_s: longest piece decoded at once, in seconds.
        device: where the model runs.
        max_batch: chunks decoded together.
    """

    def __init__(
        self,
        module: ASRModule,
        decoder: Callable[[torch.Tensor, torch.Tensor], list[str]] | None = None,
        chunk_s: float = 20.0,
        device: str | torch.device = "cpu",
        max_batch: int = 16,
    ) -> None:
        self.module = module.eval().to(device)
        self.decoder = decoder
        self.device = torch.device(device)
        self.sr = module.feature_cfg.sample_rate
        self.chunk = int(chunk_s * self.sr)
        self.max_batch = max_batch

    @torch.no_grad()
    def transcribe_wave(self, wave: np.ndarray) -> str:
        """Text of a mono waveform (N,) at the model's sample rate."""
        if is_silent(wave) or len(wave) < self.module.feature_cfg.n_fft:
            return ""
        hop = self.module.feature_cfg.hop_length
        bounds = chunk_bounds(wave, self.chunk, min(self.chunk // 4, 2 * self.sr), hop)
        texts: list[str] = []
        for i in range(0, len(bounds), self.max_batch):
            part = bounds[i : i + self.max_batch]
            lengths = torch.tensor([e - s for s, e in part], dtype=torch.long)
            batch = torch.zeros(len(part), int(lengths.max()))
            for j, (s, e) in enumerate(part):
                batch[j, : e - s] = torch.from_numpy(wave[s:e])
            log_probs, out_lengths = self.module(batch.to(self.device), lengths.to(self.device))
            dec = self.decoder
            texts += (
                dec(log_probs, out_lengths)
                if dec is not None
                else greedy_decode(log_probs, out_lengths, self.module.vocab)
            )
        return " ".join(t for t in texts if t)

    def transcribe_file(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """``{"path", "text", "duration"}`` or ``{"path", "error"}``."""
        try:
            wave = load_audio(path, self.sr)
        except AudioReadError as exc:
            return {"path": str(path), "error": str(exc)}
        return {
            "path": str(path),
            "text": self.transcribe_wave(wave),
            "duration": round(len(wave) / self.sr, 4),
        }

    def transcribe_dir(self, audio_dir: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
        """Results for every file under ``audio_dir`` (recursively, sorted)."""
        for path in find_audio_files(audio_dir):
            yield self.transcribe_file(path)


def transcribe_to_jsonl(
    transcriber: Transcriber, audio_dir: str | os.PathLike[str], out_path: str | os.PathLike[str]
) -> dict[str, int]:
    """Write ``transcripts.jsonl`` (flushed line by line, so nothing is lost on interruption);
    returns ``{"files", "transcribed", "errors"}``."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    counts = {"files": 0, "transcribed": 0, "errors": 0}
    with out.open("w", encoding="utf-8") as fh:
        for row in transcriber.transcribe_dir(audio_dir):
            counts["files"] += 1
            counts["errors" if "error" in row else "transcribed"] += 1
            if "error" in row:
                log.warning("cannot transcribe %s", row["error"])
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            fh.flush()
    return counts
