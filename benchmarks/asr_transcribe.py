"""Transcription speed: ``python -m pipelines.asr.transcribe`` as a whole process, and the :class:`~lstm_seq.audio.Recognizer` API
in-process at several batch sizes, greedy and beam + LM, on a folder of the embedded corpus's test files.

``N`` test-split files (2–3 s each) are copied into a folder; the command line is timed from process start to
``transcripts.jsonl`` written (imports, checkpoint and LM loading included), then the API once the model is
loaded. Prints files per second and the real-time factor (seconds of computing per second of audio), checks
that every API configuration gives the command line's transcripts (beam) or the same greedy text at every
batch size, and writes ``benchmarks/results/<date>-<device>-asr-transcribe.json``.

    python -m benchmarks.asr_transcribe --ckpt outputs/…/checkpoints/final.ckpt
    python -m benchmarks.asr_transcribe --ckpt PATH --files 120 --batch-sizes 1 16 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks.lstm_speed import device_name, write_result
from lstm_seq.audio import Recognizer
from lstm_seq.audio.data.manifest import read_manifest
from lstm_seq.audio.data.synth import SynthConfig, build_corpus

ROOT = Path(__file__).resolve().parents[1]


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, type=Path)
    parser.add_argument("--files", type=int, default=120)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--test-manifest", type=Path, help="default: the embedded corpus's test split")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    manifest = args.test_manifest or build_corpus(args.data_dir, SynthConfig())["test"]
    rows = read_manifest(manifest)[: args.files]
    audio_s = sum(r.duration for r in rows)
    cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "audio"
        folder.mkdir()
        for i, r in enumerate(rows):
            shutil.copy(r.audio_filepath, folder / f"{i:04d}{Path(r.audio_filepath).suffix}")
        env = {
            k: os.environ[k] for k in ("PATH", "HOME", "TMPDIR", "LANG", "OMP_NUM_THREADS") if k in os.environ
        }
        env["PYTHONPATH"] = str(ROOT)
        cmd = [sys.executable, "-m", "pipelines.asr.transcribe", f"ckpt={args.ckpt.resolve()}",
               f"audio_dir={folder}", f"hydra.run.dir={Path(work) / 'run'}", f"device={args.device}"]  # fmt: skip
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        cli_s = time.perf_counter() - t0
        cli_rows = [
            json.loads(x) for x in (Path(work) / "run" / "transcripts.jsonl").read_text().splitlines()
        ]
        cases.append({"what": "pipelines.asr.transcribe (whole process)", "decode": "beam", "batch_size": 16,
                      "seconds": cli_s, "files_per_s": len(rows) / cli_s, "rtf": cli_s / audio_s, "same_as_cli": True})  # fmt: skip
        for decode in ("greedy", "beam"):
            asr = Recognizer.from_checkpoint(args.ckpt, device=args.device, decode=decode)
            asr.transcribe(folder / "0000.wav")  # warm-up
            texts_by_bs = {}
            for bs in args.batch_sizes:
                t0 = time.perf_counter()
                out = asr.transcribe(folder, batch_size=bs)
                secs = time.perf_counter() - t0
                texts_by_bs[bs] = [r.text for r in out]
                same = decode != "beam" or [r.to_dict() for r in out] == cli_rows
                cases.append({"what": "Recognizer.transcribe (model loaded)", "decode": decode, "batch_size": bs,
                              "seconds": secs, "files_per_s": len(rows) / secs, "rtf": secs / audio_s,
                              "same_as_cli": same})  # fmt: skip
            if len({tuple(t) for t in texts_by_bs.values()}) != 1:
                print(f"warning: {decode} transcripts differ between batch sizes {args.batch_sizes}")
    print(f"{len(rows)} files, {audio_s:.1f} s of audio, {device_name(torch.device(args.device))}")
    print(f"{'what':38} {'decode':7} {'batch':>5} {'seconds':>8} {'files/s':>8} {'RTF':>7} {'= CLI':>6}")
    for c in cases:
        print(f"{c['what']:38} {c['decode']:7} {c['batch_size']:5d} {c['seconds']:8.2f} {c['files_per_s']:8.1f}"
              f" {c['rtf']:7.4f} {c['same_as_cli']!s:>6}")  # fmt: skip
    return json.loads(write_result(args.out_dir, device_name(torch.device(args.device)), "-asr-transcribe",
                                   ckpt=str(args.ckpt), files=len(rows), audio_seconds=audio_s,
                                   load_average=os.getloadavg(), cases=cases).read_text())  # fmt: skip


if __name__ == "__main__":
    run()
