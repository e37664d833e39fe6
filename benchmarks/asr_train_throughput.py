"""ASR training throughput: audio-seconds trained per wall second, and the share of time spent
waiting for data.

The real training path — manifest → SpeechDataset/bucketing sampler (ASRDataModule) → Lightning
Trainer → MFCC on the model's device → conv + lstm_seq.LSTM → CTC → AdamW — on a synthetic corpus
written once into ``--data-dir``: noise-like WAV files of 2–15 s (LibriSpeech-like lengths) with
random letter transcripts. A callback stamps each training step's start and end (with a CUDA
synchronisation), so

* step time = batch start → batch end (transfer, features, forward, CTC, backward, optimizer),
* data wait = previous batch end → this batch start (the loader producing the next batch),
* throughput = audio seconds in the timed batches / (their step + wait time).

The first ``--warmup`` steps are not timed. Prints a table and writes
``benchmarks/results/<date>-<device>-asr-throughput.json``.

    python -m benchmarks.asr_train_throughput                     # GPU (bf16) if present, else CPU
    python -m benchmarks.asr_train_throughput --models default librispeech --workers 0 4 8
    python -m benchmarks.asr_train_throughput --quick             # a smoke run on CPU
    python -m benchmarks.asr_train_throughput --models default --augment none default strong --workers 0 1

``--augment`` runs each case with the waveform augmentation of ``conf/augment/<name>.yaml`` on the training
split (lstm_seq/audio/data/augment.py, in the loader: the main process with 0 workers), so the wait share shows
whether it makes data loading the bottleneck.

Models: ``default`` = conf/model/asr_bilstm.yaml (conv ×4 + 2 × 128 bidirectional);
``librispeech`` = a DeepSpeech2-like size (conv ×4 with 32 channels + 5 × 1024 bidirectional).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import soundfile as sf
import torch

from benchmarks.lstm_speed import device_name, write_result
from lstm_seq.audio.data.augment import AugmentConfig
from lstm_seq.audio.data.datamodule import ASRDataModule
from lstm_seq.audio.data.manifest import Utterance, write_manifest
from lstm_seq.audio.module import ASRModule
from lstm_seq.audio.vocab import CharVocab

MODELS: dict[str, dict[str, Any]] = {
    "default": {"subsample": 4, "conv_channels": 16, "hidden_size": 128, "num_layers": 2},
    "librispeech": {"subsample": 4, "conv_channels": 32, "hidden_size": 1024, "num_layers": 5},
}
FEATURES = {"n_mfcc": 13, "deltas": True, "cmvn": True}  # conf/features/mfcc.yaml's choices
SPECAUGMENT = {"freq_masks": 1, "freq_width": 4, "time_masks": 1, "time_width": 10, "max_time_frac": 0.1}
CONF = Path(__file__).resolve().parents[1] / "conf"


def augment_config(name: str) -> AugmentConfig:
    """The settings of ``conf/augment/<name>.yaml`` (its keys other than the Hydra defaults list)."""
    import yaml

    node = yaml.safe_load((CONF / "augment" / f"{name}.yaml").read_text()) or {}
    return AugmentConfig.from_dict({k: v for k, v in node.items() if k != "defaults"})


def write_corpus(root: Path, n: int, min_s: float, max_s: float, seed: int = 0) -> Path:
    """``n`` WAV files (16 kHz) of uniform random duration and a JSON-lines manifest; reused if present."""
    manifest = root / f"train-{n}-{min_s:g}-{max_s:g}.jsonl"
    if manifest.exists():
        return manifest
    rng = np.random.default_rng(seed)
    rows = []
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz "))
    for i in range(n):
        dur = float(rng.uniform(min_s, max_s))
        t = np.arange(int(dur * 16000)) / 16000
        wave = 0.1 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * rng.uniform(100, 400) * t)
        path = root / "wav" / f"{i:05d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, wave.astype(np.float32), 16000)
        text = "".join(rng.choice(letters, size=int(dur * 12))).strip() or "a"
        rows.append(Utterance(str(path), dur, " ".join(text.split())))
    return write_manifest(manifest, rows)


class StepTimer(pl.Callback):
    """Per training step: (audio seconds, step seconds, wait seconds), after ``warmup`` steps."""

    def __init__(self, warmup: int, sample_rate: int) -> None:
        self.warmup, self.sr = warmup, sample_rate
        self.rows: list[tuple[float, float, float]] = []
        self._end: float | None = None
        self._start = 0.0

    def _now(self, module: pl.LightningModule) -> float:
        if module.device.type == "cuda":
            torch.cuda.synchronize(module.device)
        return time.perf_counter()

    def on_train_batch_start(
        self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any, idx: int
    ) -> None:
        self._start = self._now(module)
        self._wait = self._start - self._end if self._end is not None else 0.0

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        self._end = self._now(module)
        if trainer.global_step > self.warmup and batch is not None:
            audio = float(batch.wave_lengths.sum()) / self.sr
            self.rows.append((audio, self._end - self._start, self._wait))


def measure(
    manifest: Path,
    model: str,
    workers: int,
    args: argparse.Namespace,
    accelerator: str,
    precision: str,
    augment: str = "none",
) -> dict[str, Any]:
    torch.manual_seed(0)
    module = ASRModule(
        vocab=CharVocab().to_dict(),
        features=FEATURES,
        model={**MODELS[model], "bidirectional": True, "dropout": 0.1},
        specaugment=SPECAUGMENT,
        optim={"lr": 1e-3},
    )
    dm = ASRDataModule(
        {"train": manifest},
        module.vocab,
        max_duration=20.0,
        max_frames=args.max_frames,
        num_workers=workers,
        augment=augment_config(augment),
    )
    timer = StepTimer(args.warmup, module.feature_cfg.sample_rate)
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_steps=args.warmup + args.steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(module, datamodule=dm)
    audio, step, wait = (np.array(c) for c in zip(*timer.rows, strict=True))
    total = step.sum() + wait.sum()
    return {
        "name": f"{model}-w{workers}" + (f"-aug-{augment}" if augment != "none" else ""),
        "model": model,
        "workers": workers,
        "augment": augment,
        "steps": len(step),
        "audio_s_per_s": round(float(audio.sum() / total), 2),
        "step_ms_median": round(statistics.median(step) * 1e3, 2),
        "wait_share": round(float(wait.sum() / total), 4),
        "audio_s_per_batch": round(float(audio.mean()), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["default", "librispeech"], choices=list(MODELS))
    parser.add_argument(
        "--workers", type=int, nargs="+", default=None, help="loader processes (default 0 and 4)"
    )
    parser.add_argument(
        "--augment", nargs="+", default=["none"], help="conf/augment presets to run each case with"
    )
    parser.add_argument("--steps", type=int, default=30, help="timed steps per case")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--utterances", type=int, default=600)
    parser.add_argument("--max-frames", type=int, default=24000, help="padded frames per batch (10 ms each)")
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "lstm_seq_asr_bench")
    parser.add_argument("--quick", action="store_true", help="tiny corpus, default model, few steps")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    gpu = args.device == "cuda"
    if args.quick:
        args.models, args.steps, args.warmup, args.utterances, args.max_frames = ["default"], 4, 1, 24, 3000
    workers = args.workers if args.workers is not None else ([0, 4] if not args.quick else [0])
    precision = "bf16-mixed" if gpu else "32-true"
    accelerator = "gpu" if gpu else "cpu"
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    min_s, max_s = (1.0, 3.0) if args.quick else (2.0, 15.0)
    manifest = write_corpus(args.data_dir, args.utterances, min_s, max_s)

    name = device_name(torch.device(args.device))
    print(f"device: {name} | torch {torch.__version__} | {precision} | max_frames {args.max_frames}")
    print(f"{'case':<28}{'audio s/s':>11}{'step ms':>10}{'wait %':>8}{'audio s/batch':>15}")
    rows = []
    for model in args.models:
        for w in workers:
            for aug in args.augment:
                row = measure(manifest, model, w, args, accelerator, precision, aug)
                rows.append(row)
                print(
                    f"{row['name']:<28}{row['audio_s_per_s']:>11.1f}{row['step_ms_median']:>10.1f}"
                    f"{100 * row['wait_share']:>7.1f}%{row['audio_s_per_batch']:>15.1f}",
                    flush=True,
                )
    suffix = "-asr-throughput" + ("-quick" if args.quick else "")
    write_result(args.out, name, suffix, precision=precision, cases=rows)


if __name__ == "__main__":
    main()
