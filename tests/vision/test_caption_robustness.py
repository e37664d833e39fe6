"""benchmarks/caption_robustness.py: its held-out renderer, and the whole benchmark on a smoke checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.caption_robustness import held_out_set, main
from lstm_seq.vision.data.synth import held_out_pairs
from tests._env import clean_env

ROOT = Path(__file__).resolve().parents[2]


def test_held_out_renderer_is_deterministic_and_uses_seen_pairs_only() -> None:
    a, objs = held_out_set(12, seed=1)
    b, _ = held_out_set(12, seed=1)
    assert a.shape == (12, 64, 64, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    held = held_out_pairs()
    assert all((o["colour"], o["shape"]) not in held for scene in objs for o in scene)
    assert {len(s) for s in objs} <= {1, 2, 3}


@pytest.mark.slow
def test_benchmark_on_a_smoke_checkpoint(tmp_path: Path) -> None:
    env = clean_env()
    run = tmp_path / "run"
    subprocess.run(
        [sys.executable, "-m", "pipelines.caption", "debug=smoke", "logger=none", f"hydra.run.dir={run}",
         f"paths.data_dir={tmp_path / 'data'}"],
        cwd=ROOT, env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    res = main(["--ckpt", str(run / "checkpoints" / "best.ckpt"), "--smoke", "--data-dir", str(tmp_path / "data"),
                "--n", "16", "--out-dir", str(tmp_path / "results")])  # fmt: skip
    (written,) = (tmp_path / "results").glob("*-caption-robustness.json")
    saved = json.loads(written.read_text())
    for part in ("held_out", "validation"):
        for key in ("object_recall", "exact_set", "count_accuracy", "repeat_rate"):
            assert 0.0 <= saved[part][key] <= 1.0
    assert saved["held_out"]["n"] == 16 and res["validation"]["n"] == 16
