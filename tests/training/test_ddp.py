"""Two CPU processes (gloo) train each pipeline with ``trainer=ddp`` for one smoke epoch: one run directory,
identical weights on both ranks, every training sample seen exactly once per epoch (the caption loader's
shuffled batches and the speech duration buckets are both sharded), only rank 0 writing outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lstm_seq.vision.data.corpus import SMOKE_SCENES
from tests.training._pipeline import metrics, run

SMALL_ASR = ["decode=greedy", "plot_utterances=0", "model.hidden_size=32", "model.num_layers=1"]


@pytest.mark.parametrize("pipeline", ["caption", "asr"])
def test_ddp_two_cpu_processes(tmp_path: Path, pipeline: str) -> None:
    outputs = tmp_path / "outputs"
    proc = run(
        pipeline,
        "debug=smoke",
        "logger=none",
        "trainer=ddp",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        f"paths.data_dir={tmp_path / 'data'}",
        f"paths.output_dir={outputs}",  # the default timestamped run dir: children must not make their own
        *(SMALL_ASR if pipeline == "asr" else []),
    )
    runs = [p.parent for p in outputs.rglob("metrics.json")]
    dirs = [p for p in outputs.rglob("*") if p.is_dir() and (p / ".hydra").is_dir()]
    assert len(runs) == 1 and dirs == runs, (runs, dirs, proc.stdout[-2000:])
    run_dir = runs[0]
    m = metrics(run_dir)
    assert m["train/world_size"] == 2
    # the dataset size, from the data itself (speech: utterances kept by the dataset)
    n_train = SMOKE_SCENES["n_train"] if pipeline == "caption" else m["data/train/kept"]
    assert m["train/samples_seen"] == n_train and m["train/samples_unique"] == n_train  # none lost or doubled
    assert m["train/weights_identical"] is True  # SHA-256 of every rank's parameters after training
    assert any(k.startswith("test/") for k in m)
    # rank 1 wrote no outputs of its own: one predictions file, one checkpoint folder, all in the one run dir
    assert [p.parent for p in outputs.rglob("predictions.jsonl")] == [run_dir]
    assert [p.parent.parent for p in outputs.rglob("last.ckpt")] == [run_dir]
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] > 0
