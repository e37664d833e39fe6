"""In-process crash and resume with a real Lightning Trainer: the resumed run ends with exactly the weights of
an uninterrupted one (dropout makes the random states matter), trains on exactly the same batches, and, with a
validation set, picks the same best checkpoint and stops early at the same epoch. ``last.ckpt`` is written at
every epoch end whether or not the monitored metric improved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader

from lstm_seq.training import (
    AtomicCheckpointIO,
    LastCheckpoint,
    RunCheckpoint,
    fault_tolerance_callbacks,
)
from tests.training import _kill_switch
from tests.training._tiny import Points, Regressor, collate, loader

BATCHES = 10  # per epoch: 40 points, batch size 4


class _Died(BaseException):
    """A kill: nothing is saved on the way out (Lightning's exception handling does not catch it either)."""


def _die() -> None:
    raise _Died


@pytest.fixture
def kill_at(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``kill_at("save:3")``: the next fit dies right after that event (tests/training/_kill_switch.py,
    armed by :func:`_trainer`)."""

    def arm(spec: str | None) -> None:
        if spec is None:
            monkeypatch.delenv(_kill_switch.KILL_ENV, raising=False)
        else:
            monkeypatch.setenv(_kill_switch.KILL_ENV, spec)

    return arm


class _Crash(pl.Callback):
    """Dies (like a kill: no checkpoint on the way out) before the batch after ``at`` optimizer steps."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_start(self, trainer: pl.Trainer, *args: object) -> None:
        if trainer.global_step == self.at:
            raise _Died


class _Validated(Regressor):
    """The regressor with a validation loss (``val/loss``); ``flat``: it logs 1.0, never improving."""

    def __init__(self, flat: bool = False) -> None:
        super().__init__(schedule=True)
        self.flat = flat

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss = torch.nn.functional.mse_loss(self.net(batch["x"]).squeeze(-1), batch["y"])
        self.log("val/loss", torch.ones(()) if self.flat else loss)


def _trainer(
    ckpt_dir: Path, every: int, extra: list[pl.Callback] | None = None, max_epochs: int = 3
) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=max_epochs, accelerator="cpu", logger=False, enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[*(extra or []), *_kill_switch.arm(fault_tolerance_callbacks(ckpt_dir, every), die=_die)],
        plugins=[AtomicCheckpointIO()], use_distributed_sampler=False, deterministic=True,
    )  # fmt: skip


@pytest.mark.parametrize("schedule", [False, True])
@pytest.mark.parametrize(
    ("every", "crash_at", "position"),
    # a step checkpoint every `every` steps and one at each epoch end (step 10, 20, ...)
    [(3, 4, "mid-epoch"), (3, 10, "epoch end"), (4, 14, "mid-epoch"), (0, 21, "epoch end")],
)
def test_resume_equals_uninterrupted(
    tmp_path: Path, every: int, crash_at: int, position: str, schedule: bool
) -> None:
    pl.seed_everything(0)
    whole = Regressor(schedule=schedule)
    _trainer(tmp_path / "a", every).fit(whole, loader())

    pl.seed_everything(0)
    first = Regressor(schedule=schedule)
    with pytest.raises(_Died):
        _trainer(tmp_path / "b", every, [_Crash(crash_at)]).fit(first, loader())
    ckpt = torch.load(tmp_path / "b" / "last.ckpt", weights_only=True)
    step = ckpt["global_step"]
    assert step == max(s for s in range(1, crash_at + 1) if s % BATCHES == 0 or (every and s % every == 0))
    assert (step % BATCHES != 0) == (position == "mid-epoch")

    pl.seed_everything(123)  # a different seed: everything must come from the checkpoint
    resumed = Regressor(schedule=schedule)
    _trainer(tmp_path / "c", every).fit(resumed, loader(), ckpt_path=str(tmp_path / "b" / "last.ckpt"))
    assert first.seen[: step * 4] + resumed.seen == whole.seen  # nothing repeated, nothing skipped
    for (name, p), q in zip(whole.named_parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q), name


def _fit_validated(
    out: Path, ckpt: Path | None = None, every: int = 1, patience: float | None = None
) -> tuple[pl.Trainer, _Validated]:
    """A run with validation, the best-model checkpoint of the pipelines and (``patience``: min_delta
    that no epoch reaches after the first) early stopping after the second epoch."""
    pl.seed_everything(0 if ckpt is None else 123)
    model = _Validated()
    best = RunCheckpoint(
        dirpath=out, filename="best-epoch{epoch:02d}", monitor="val/loss", auto_insert_metric_name=False
    )
    extra: list[pl.Callback] = [best]
    if patience is not None:
        extra.append(pl.callbacks.EarlyStopping("val/loss", patience=1, min_delta=patience))
    trainer = _trainer(out, every, extra, max_epochs=4)
    val = DataLoader(Points(12), batch_size=4, collate_fn=collate)
    trainer.fit(model, loader(), val, ckpt_path=str(ckpt) if ckpt else None)
    return trainer, model


@pytest.mark.parametrize("early_stop", [False, True])
@pytest.mark.parametrize(
    "moment",
    ["save:5", "save:10", "train_batch:10", "val_batch:2", "save:11", "save:20"],
    # mid-epoch, after the epoch-end save, after the last batch of an epoch (before its validation), during
    # a validation, the first step of an epoch, the end of epoch 1 (where early stopping stops the run)
)
def test_kill_with_validation_resumes_the_same_best_and_stop(
    tmp_path: Path, kill_at: Any, moment: str, early_stop: bool
) -> None:
    patience = 1e6 if early_stop else None
    kill_at(None)
    whole, whole_model = _fit_validated(tmp_path / "whole", patience=patience)
    kill_at(moment)
    with pytest.raises(_Died):
        _fit_validated(tmp_path / "killed", patience=patience)
    kill_at(None)
    resumed, model = _fit_validated(
        tmp_path / "resumed", tmp_path / "killed" / "last.ckpt", patience=patience
    )
    assert whole.current_epoch == resumed.current_epoch == (2 if early_stop else 4)
    assert whole.global_step == resumed.global_step
    for (name, p), q in zip(whole_model.named_parameters(), model.parameters(), strict=True):
        assert torch.equal(p, q), name
    best_whole, best_resumed = whole.checkpoint_callback, resumed.checkpoint_callback
    assert isinstance(best_whole, RunCheckpoint) and isinstance(best_resumed, RunCheckpoint)
    assert Path(best_whole.best_model_path).name == Path(best_resumed.best_model_path).name
    assert torch.equal(best_whole.best_model_score, best_resumed.best_model_score)
    assert (tmp_path / "resumed" / "last.ckpt").is_file()  # also when nothing was left to train


def test_last_checkpoint_at_every_epoch_end_without_improvement(tmp_path: Path) -> None:
    """``checkpoint_every_n_steps=0``: last.ckpt at each epoch end, also when val/loss never improves
    (Lightning's ModelCheckpoint(save_last=True) writes it only with a new best)."""
    pl.seed_everything(0)
    steps: list[int | None] = []

    class _Spy(pl.Callback):  # runs before LastCheckpoint's epoch-end hook: sees the previous epoch's file
        def on_train_epoch_end(self, trainer: pl.Trainer, *args: object) -> None:
            last = tmp_path / "last.ckpt"
            steps.append(torch.load(last, weights_only=True)["global_step"] if last.exists() else None)

    best = RunCheckpoint(dirpath=tmp_path, filename="best", monitor="val/loss")
    trainer = _trainer(tmp_path, 0, [best, _Spy()], max_epochs=4)
    val = DataLoader(Points(12), batch_size=4, collate_fn=collate)
    trainer.fit(_Validated(flat=True), loader(), val)
    last = next(cb for cb in trainer.callbacks if isinstance(cb, LastCheckpoint))
    assert last.writes == 4  # one per epoch end, nothing mid-epoch
    assert steps == [None, BATCHES, 2 * BATCHES, 3 * BATCHES]
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == 4 * BATCHES
    assert Path(best.best_model_path).name == "best.ckpt" and best.best_model_score == 1.0


class _WorseAfterFirst(_Validated):
    """``val/loss`` against the negated targets: it grows as the model learns y, so epoch 0 stays the best."""

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.log("val/loss", torch.nn.functional.mse_loss(self.net(batch["x"]).squeeze(-1), -batch["y"]))


def _fit_early_best(
    out: Path, cls: type[pl.callbacks.ModelCheckpoint], ckpt: Path | None = None
) -> pl.callbacks.ModelCheckpoint:
    pl.seed_everything(0 if ckpt is None else 123)
    best = cls(dirpath=out, filename="best", monitor="val/loss", enable_version_counter=False)
    val = DataLoader(Points(12), batch_size=4, collate_fn=collate)
    _trainer(out, 3, [best], max_epochs=4).fit(
        _WorseAfterFirst(), loader(), val, ckpt_path=str(ckpt) if ckpt else None
    )
    return best


@pytest.mark.parametrize("moment", ["save:4", "save:6", "save:9"])
# saves every 3 steps and at each epoch end (step 10, 20, ...): the end of epoch 0, step 15, step 21
def test_best_model_and_score_survive_a_kill_after_the_best_epoch(
    tmp_path: Path, kill_at: Any, moment: str
) -> None:
    """The best epoch (0) lies before the kill: the resumed run keeps it as the best — the same score, the
    same best.ckpt (epoch 0's weights, in the run that wrote it) — and writes no best.ckpt of its own. With
    Lightning's ModelCheckpoint the first validation after the resume would count as a new best."""
    kill_at(None)
    whole = _fit_early_best(tmp_path / "whole", RunCheckpoint)
    assert torch.load(whole.best_model_path, weights_only=True)["epoch"] == 0  # the case: an early best
    results = {}
    for cls in (RunCheckpoint, pl.callbacks.ModelCheckpoint):
        name = cls.__name__
        kill_at(moment)
        with pytest.raises(_Died):
            _fit_early_best(tmp_path / name / "killed", cls)
        kill_at(None)
        results[name] = _fit_early_best(
            tmp_path / name / "resumed", cls, tmp_path / name / "killed" / "last.ckpt"
        )
    ours = results["RunCheckpoint"]
    assert torch.equal(ours.best_model_score, whole.best_model_score)
    assert Path(ours.best_model_path) == tmp_path / "RunCheckpoint" / "killed" / "best.ckpt"
    assert not (tmp_path / "RunCheckpoint" / "resumed" / "best.ckpt").exists()
    a = torch.load(whole.best_model_path, weights_only=True)
    b = torch.load(ours.best_model_path, weights_only=True)
    assert b["epoch"] == 0 and all(
        torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"]
    )
    plain = results["ModelCheckpoint"]  # the bookkeeping this guards against: a later epoch becomes "best"
    assert Path(plain.best_model_path) == tmp_path / "ModelCheckpoint" / "resumed" / "best.ckpt"
    assert torch.load(plain.best_model_path, weights_only=True)["epoch"] >= 1
