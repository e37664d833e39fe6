"""SIGTERM (a cluster scheduler's or ``docker stop``'s signal) in the middle of training: the run writes
``last.ckpt`` at the end of the batch it was in, stops with an error that names it and the command that
resumes it (the job exits 143, recorded as interrupted), and the resumed run ends as if it never stopped."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf

from pipelines._hydra import TrainingInterrupted, fit
from pipelines._sweep import pipeline_job
from tests.training._tiny import Regressor, loader


class _Logged(Regressor):
    """The tiny regressor logging its loss (the monitored metric); ``sigterm_at``: the global step whose
    training step sends this process SIGTERM."""

    def __init__(self, sigterm_at: int | None = None) -> None:
        torch.manual_seed(0)  # the same initial weights in every run
        super().__init__(schedule=True)
        self.sigterm_at = sigterm_at

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        if self.global_step == self.sigterm_at:
            os.kill(os.getpid(), signal.SIGTERM)
        loss = super().training_step(batch, batch_idx)
        self.log("train_loss", loss)
        return loss


def _cfg(ckpt: Path | None = None) -> Any:
    trainer = {"_target_": "lightning.pytorch.Trainer", "max_epochs": 3, "accelerator": "cpu", "logger": False,
               "enable_progress_bar": False, "enable_model_summary": False, "deterministic": True}  # fmt: skip
    # no step checkpoints: the one after the SIGTERM batch is written because of the signal
    resilience = {"checkpoint_every_n_steps": 0, "max_consecutive_bad_batches": 10}
    return OmegaConf.create(
        {"trainer": trainer, "logger": None, "resilience": resilience, "ckpt": str(ckpt) if ckpt else None}
    )


def _fit(module: Regressor, out: Path, ckpt: Path | None = None) -> Any:
    return fit(_cfg(ckpt), module, out, "train_loss", "min", train_dataloaders=loader())


def test_sigterm_mid_epoch_leaves_last_ckpt_and_the_resume_command(tmp_path: Path) -> None:
    whole = _Logged()
    _fit(whole, tmp_path / "whole")

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingInterrupted) as err:
        _fit(_Logged(sigterm_at=13), tmp_path / "stopped")  # epoch 1, batch 3 of 10
    assert signal.getsignal(signal.SIGTERM) == before  # Lightning's handler is gone again
    last = tmp_path / "stopped" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 14  # that batch's end, not epoch 1's start
    message = str(err.value)
    assert "stopped by SIGTERM in epoch 1 after 14 optimizer steps" in message
    assert f"last checkpoint {last}" in message and err.value.command.endswith(f"ckpt={last}")
    assert (tmp_path / "stopped" / "metrics.json").is_file()

    resumed = _Logged()
    _fit(resumed, tmp_path / "resumed", ckpt=last)
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_an_interrupted_job_exits_non_zero() -> None:
    """The job wrapper turns the interruption into exit status 143 (Lightning's own SIGTERM exit is 0)."""

    def interrupted(cfg: object) -> dict[str, float]:
        raise TrainingInterrupted("stopped by SIGTERM …", "python -m pipelines.asr ckpt=last.ckpt")

    with pytest.raises(SystemExit) as exc:
        pipeline_job(interrupted)(OmegaConf.create({"objective": {"metric": "test/wer"}}))
    assert exc.value.code == 128 + signal.SIGTERM
