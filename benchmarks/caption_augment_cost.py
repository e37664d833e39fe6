"""What the scene augmentation costs per training sample, with and without figure–ground recomposition
(``data.augment.recompose``), in CPU seconds of this process: the training step's only added work, since the
model is unchanged.

    python -m benchmarks.caption_augment_cost                      # 400 scenes, recompose 0 and 0.5
    python -m benchmarks.caption_augment_cost --recompose 0 0.5 1 --n 800

Writes ``benchmarks/results/<date>-<device>-caption-augment-cost.json``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from benchmarks.lstm_speed import device_name, write_result
from lstm_seq.vision.data.augment import ImageAugment, augment_scene
from lstm_seq.vision.data.synth import SceneConfig, generate

RESULTS = Path(__file__).resolve().parent / "results"


def cost(images: torch.Tensor, records: list[dict[str, Any]], aug: ImageAugment, repeats: int = 3) -> float:
    """Median over ``repeats`` of the CPU seconds per sample of :func:`augment_scene` on ``images`` (N, 3, S, S)."""
    times = []
    for r in range(repeats):
        t0 = time.process_time()
        for i, rec in enumerate(records):
            augment_scene(images[i], rec["objects"], rec["background"], 5, aug, seed=r * len(records) + i)
        times.append((time.process_time() - t0) / len(records))
    return sorted(times)[len(times) // 2]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=400, help="scenes")
    parser.add_argument("--recompose", type=float, nargs="+", default=[0.0, 0.5])
    parser.add_argument("--out-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    imgs, records = generate(SceneConfig(n_train=args.n, n_val=0, n_test=0))
    images = torch.from_numpy(imgs).permute(0, 3, 1, 2).float()
    cases = []
    for p in args.recompose:
        ms = cost(images, records, replace(ImageAugment(), recompose=p)) * 1000
        cases.append({"recompose": p, "ms_per_sample": ms})
        print(f"recompose {p:4.2f}: {ms:6.2f} ms CPU per training sample")
    write_result(
        Path(args.out_dir), device_name(torch.device("cpu")), "-caption-augment-cost", n=args.n, cases=cases
    )
    return {"cases": cases}


if __name__ == "__main__":
    main()
