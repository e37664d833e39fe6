"""Kill -9 in the middle of an epoch, resume from last.ckpt: the same final weights and metrics as a run that was
never interrupted (same seed, deterministic CPU training). One test per pipeline, on the smoke corpora."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.training._pipeline import loader_position, metrics, run, run_and_kill, weights

# keys that legitimately differ between an interrupted and an uninterrupted run
PER_PROCESS = {"train/seconds", "train/dropped_ctc", "train/samples_unique"}


def _check_same(whole: Path, resumed: Path) -> None:
    a, b = weights(whole / "checkpoints" / "last.ckpt"), weights(resumed / "checkpoints" / "last.ckpt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ma, mb = metrics(whole), metrics(resumed)
    assert ma["train/samples_seen"] == mb["train/samples_seen"]
    assert {k: v for k, v in ma.items() if k not in PER_PROCESS} == {
        k: v for k, v in mb.items() if k not in PER_PROCESS
    }


@pytest.mark.parametrize(
    ("pipeline", "every", "halt", "extra"),
    [
        # caption smoke: 2 batches per epoch, 2 epochs; killed after step 3 = in the middle of epoch 1
        ("caption", 1, 3, ["logger=none"]),
        # asr smoke: 6 batches per epoch, 2 epochs; killed after step 8 = in the middle of epoch 1
        (
            "asr",
            2,
            8,
            [
                "logger=none",
                "decode=greedy",
                "plot_utterances=0",
                "model.hidden_size=32",
                "model.num_layers=1",
            ],
        ),
    ],
)
def test_kill_mid_epoch_and_resume(
    tmp_path_factory: pytest.TempPathFactory, pipeline: str, every: int, halt: int, extra: list[str]
) -> None:
    tmp = tmp_path_factory.mktemp(pipeline)
    common = [
        "debug=smoke",
        f"paths.data_dir={tmp_path_factory.getbasetemp() / 'data'}",
        f"resilience.checkpoint_every_n_steps={every}",
        "trainer.deterministic=true",
        *extra,
    ]
    run(pipeline, *common, f"hydra.run.dir={tmp / 'whole'}")
    run_and_kill(pipeline, halt, *common, f"hydra.run.dir={tmp / 'killed'}")
    last = tmp / "killed" / "checkpoints" / "last.ckpt"
    pos = loader_position(last)
    assert pos["global_step"] == halt and 0 < pos["batches_done"], pos  # a mid-epoch checkpoint
    assert not (tmp / "killed" / "metrics.json").exists()
    run(pipeline, *common, f"hydra.run.dir={tmp / 'resumed'}", f"ckpt={last}")
    _check_same(tmp / "whole", tmp / "resumed")
