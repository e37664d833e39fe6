"""Non-finite batches are skipped and counted; too many in a row stop the run with a usable last.ckpt."""

from __future__ import annotations

import math
from pathlib import Path

import lightning.pytorch as pl
import torch

from lstm_seq.training import AtomicCheckpointIO, NonFiniteGuard, fault_tolerance_callbacks, stop_message
from lstm_seq.training.checkpoint_io import load_checkpoint_file
from lstm_seq.vision.module import CaptionModule
from tests.training._pipeline import metrics, run
from tests.training._tiny import Regressor, loader


class _Snapshots(pl.Callback):
    def __init__(self) -> None:
        self.before: dict[int, torch.Tensor] = {}
        self.after: dict[int, torch.Tensor] = {}

    def on_train_batch_start(self, trainer: pl.Trainer, m: pl.LightningModule, *args: object) -> None:
        self.before[trainer.global_step] = torch.cat([p.detach().flatten() for p in m.parameters()])

    def on_train_batch_end(self, trainer: pl.Trainer, m: pl.LightningModule, *args: object) -> None:
        self.after[len(self.after)] = torch.cat([p.detach().flatten() for p in m.parameters()])


def _fit(tmp: Path, bad: tuple[int, ...], max_bad: int, *extra: pl.Callback) -> tuple[pl.Trainer, Regressor]:
    pl.seed_everything(0)
    model = Regressor(bad_steps=bad)
    trainer = pl.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[*fault_tolerance_callbacks(tmp, 1, max_bad), *extra], plugins=[AtomicCheckpointIO()],
        gradient_clip_val=1.0,
    )  # fmt: skip
    trainer.fit(model, loader())
    return trainer, model


def test_bad_batches_are_skipped_and_counted(tmp_path: Path) -> None:
    snaps = _Snapshots()
    trainer, model = _fit(tmp_path, (2, 5), 3, snaps)
    guard = next(cb for cb in trainer.callbacks if isinstance(cb, NonFiniteGuard))
    assert guard.skipped == 2 and stop_message(trainer) is None
    assert trainer.callback_metrics["train/skipped_batches"] == 2
    # the bad batches left the weights as they were (and the step counter still advanced); good ones moved them
    assert torch.equal(snaps.after[2], snaps.before[2]) and torch.equal(snaps.after[5], snaps.before[5])
    assert not torch.equal(snaps.after[3], snaps.before[3])
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert trainer.current_epoch == 2  # trained to the end


def test_too_many_in_a_row_stop_with_a_usable_checkpoint(tmp_path: Path) -> None:
    trainer, model = _fit(tmp_path, tuple(range(3, 40)), 4)
    msg = stop_message(trainer)
    assert msg is not None and "4 consecutive batches" in msg and "max_consecutive_bad_batches=4" in msg
    assert trainer.global_step == 3 + 4  # stopped right after the 4th bad batch
    ckpt = load_checkpoint_file(tmp_path / "last.ckpt")
    assert all(bool(torch.isfinite(v).all()) for v in ckpt["state_dict"].values())
    assert ckpt["callbacks"]["NonFiniteGuard"] == {"skipped": 4, "consecutive": 4}
    assert not math.isnan(float(next(model.parameters()).sum()))


def test_diverging_pipeline_run_stops_clearly_and_keeps_a_finite_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run(
        "caption", "debug=smoke", "logger=none", f"paths.data_dir={tmp_path / 'data'}", f"hydra.run.dir={out}",
        "optim.lr=1e30", "resilience.max_consecutive_bad_batches=2", "trainer.max_epochs=4", check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "2 consecutive batches had a non-finite loss or gradient" in proc.stderr + proc.stdout
    assert metrics(out)["train/skipped_batches"] == 2
    model = CaptionModule.load(out / "checkpoints" / "last.ckpt")
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
