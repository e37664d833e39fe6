"""In-process crash and resume with a real Lightning Trainer: the resumed run ends with exactly the weights of
an uninterrupted one (dropout makes the random states matter) and trains on exactly the same batches."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from lstm_seq.training import AtomicCheckpointIO, fault_tolerance_callbacks
from tests.training._tiny import Regressor, loader


class _Died(RuntimeError):
    pass


class _Crash(pl.Callback):
    """Dies (like a kill: no checkpoint on the way out) before the batch after ``at`` optimizer steps."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_start(self, trainer: pl.Trainer, *args: object) -> None:
        if trainer.global_step == self.at:
            raise _Died("simulated crash")


def _trainer(ckpt_dir: Path, every: int, extra: list[pl.Callback] | None = None) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=3, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[*fault_tolerance_callbacks(ckpt_dir, every), *(extra or [])], plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False, deterministic=True,
    )  # fmt: skip


@pytest.mark.parametrize("schedule", [False, True])
@pytest.mark.parametrize(
    ("every", "crash_at", "position"),
    [(3, 4, "mid-epoch"), (3, 10, "mid-epoch"), (5, 12, "epoch end")],  # 10 batches per epoch
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
    state = ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    assert step == crash_at // every * every
    assert (state["batches_done"] % 10 != 0) == (position == "mid-epoch")

    pl.seed_everything(123)  # a different seed: everything must come from the checkpoint
    resumed = Regressor(schedule=schedule)
    _trainer(tmp_path / "c", every).fit(resumed, loader(), ckpt_path=str(tmp_path / "b" / "last.ckpt"))
    assert first.seen[: step * 4] + resumed.seen == whole.seen  # nothing repeated, nothing skipped
    for (name, p), q in zip(whole.named_parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q), name
