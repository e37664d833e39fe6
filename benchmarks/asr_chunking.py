"""Chunked vs whole-clip transcription of long clips: does cutting at the quietest frames change the text?

Long clips are made from the embedded corpus's test split: ``--per-clip`` utterances joined with ``--gap`` seconds
of silence (each clip several chunks long at ``--chunk-s``). Each clip is transcribed whole (one piece) and
chunked (:meth:`lstm_seq.audio.recognizer.Recognizer.chunk_bounds`, no overlap, each chunk normalised on its own). Prints
how many clips give the same text both ways, how many cuts fall inside a gap, and both WERs against the joined
references; writes ``benchmarks/results/<date>-<device>-asr-chunking.json``.

    python -m benchmarks.asr_chunking --ckpt outputs/…/checkpoints/final.ckpt
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.lstm_speed import device_name, write_result
from lstm_seq.audio import Recognizer
from lstm_seq.audio.data.io import load_audio
from lstm_seq.audio.data.manifest import read_manifest
from lstm_seq.audio.data.synth import SynthConfig, build_corpus
from lstm_seq.metrics.wer import word_errors

ROOT = Path(__file__).resolve().parents[1]


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, type=Path)
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--per-clip", type=int, default=4)
    parser.add_argument("--gap", type=float, default=0.4)
    parser.add_argument("--chunk-s", type=float, default=4.0)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    rows = read_manifest(build_corpus(args.data_dir, SynthConfig())["test"])
    whole = Recognizer.from_checkpoint(args.ckpt, chunk_s=1e6)
    chunked = Recognizer.from_checkpoint(args.ckpt, chunk_s=args.chunk_s)
    sr = whole.sample_rate
    gap = np.zeros(int(args.gap * sr), np.float32)
    refs, hyp_whole, hyp_chunked, same, cuts, in_gap, seconds = [], [], [], 0, 0, 0, []
    for c in range(args.clips):
        group = rows[c * args.per_clip : (c + 1) * args.per_clip]
        parts, gaps, pos = [], [], 0
        for i, r in enumerate(group):
            w = load_audio(r.audio_filepath, sr)
            parts.append(w)
            pos += len(w)
            if i < len(group) - 1:
                parts.append(gap)
                gaps.append((pos, pos + len(gap)))
                pos += len(gap)
        clip = np.concatenate(parts)
        seconds.append(len(clip) / sr)
        bounds = chunked.chunk_bounds(clip)
        for _, e in bounds[:-1]:
            cuts += 1
            in_gap += any(a <= e <= b for a, b in gaps)
        a, b = (
            whole.transcribe(clip, sample_rate=sr)[0].text,
            chunked.transcribe(clip, sample_rate=sr)[0].text,
        )
        refs.append(" ".join(r.text for r in group))
        hyp_whole.append(a)
        hyp_chunked.append(b)
        same += a == b
    result = {
        "clips": args.clips, "seconds_mean": float(np.mean(seconds)), "chunk_s": args.chunk_s, "gap_s": args.gap,
        "same_text": same, "cuts": cuts, "cuts_in_gap": in_gap,
        "wer_whole": word_errors(refs, hyp_whole).rate, "wer_chunked": word_errors(refs, hyp_chunked).rate,
        "examples": [{"ref": r, "whole": a, "chunked": b} for r, a, b in zip(refs, hyp_whole, hyp_chunked, strict=True)
                     if a != b][:5],
    }  # fmt: skip
    print(f"{args.clips} clips of {result['seconds_mean']:.1f} s, chunk_s {args.chunk_s}: same text {same}/{args.clips};"
          f" cuts in a gap {in_gap}/{cuts}; WER whole {result['wer_whole']:.2%}, chunked {result['wer_chunked']:.2%}")  # fmt: skip
    path = write_result(args.out_dir, device_name(torch.device("cpu")), "-asr-chunking", ckpt=str(args.ckpt),
                        load_average=os.getloadavg(), **result)  # fmt: skip
    return json.loads(path.read_text())


if __name__ == "__main__":
    run()
