"""Exact resume with the caption augmentation on: a smoke run killed mid-epoch and resumed from its last.ckpt
ends with the same weights and test metrics as the same run uninterrupted (every augmentation draw is a
function of (seed, epoch, index), not of how many samples a process has drawn)."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.training._pipeline import loader_position, metrics, run, weights

COMMON = [
    "debug=smoke",
    "trainer.max_epochs=2",
    "resilience.checkpoint_every_n_steps=1",
    "trainer.deterministic=true",
    "trainer.accelerator=cpu",
    "logger=none",
    # every transform on, and strong, so that a wrongly seeded draw would show
    "data.augment.hflip=0.5",
    "data.augment.scale=0.1",
    "data.augment.translate=0.2",
    "data.augment.hue=0.02",
]


def test_resume_mid_epoch_with_augmentation_equals_the_uninterrupted_run(tmp_path: Path) -> None:
    common = [*COMMON, f"paths.data_dir={tmp_path / 'data'}"]
    run("caption", *common, f"hydra.run.dir={tmp_path / 'whole'}")
    # killed right after its 3rd write of last.ckpt: epoch 1, one batch in (smoke: 2 batches per epoch)
    run("caption", *common, f"hydra.run.dir={tmp_path / 'killed'}", kill_at="save:3")
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    pos = loader_position(last)
    assert pos["epoch"] == 1 and pos["batches_done"] == 1, pos
    run("caption", *common, f"hydra.run.dir={tmp_path / 'resumed'}", f"ckpt={last}")
    a = weights(tmp_path / "whole" / "checkpoints" / "last.ckpt")
    b = weights(tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ma, mb = metrics(tmp_path / "whole"), metrics(tmp_path / "resumed")
    skip = {"train/seconds", "train/samples_unique"}
    assert {k: v for k, v in ma.items() if k not in skip} == {k: v for k, v in mb.items() if k not in skip}
