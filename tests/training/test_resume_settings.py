"""A resume with changed settings: what defines the model and its data is refused, naming each key with both
values, before any step; the learning rate and longer training are applied; the checkpoints then record the
settings that ran."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf

from lstm_seq.training.run_settings import STATE_KEY, check_resume
from lstm_seq.training.schedule import WarmupCosine, warmup_cosine
from pipelines._hydra import RESUMABLE, ConfigError, fit
from tests.training._tiny import Regressor, loader


class _Module(Regressor):
    """The tiny regressor with hyper-parameters (the module's own settings, as the pipelines' have) and a
    logged loss; its learning rate is ``optim.lr`` of the run."""

    def __init__(self, cfg: Any) -> None:
        torch.manual_seed(0)
        super().__init__()
        self.save_hyperparameters({"features": dict(cfg.features), "optim": dict(cfg.optim)})
        self.lrs: list[float] = []

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        self.lrs.append(self.trainer.optimizers[0].param_groups[0]["lr"])
        loss = super().training_step(batch, batch_idx)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self) -> Any:  # as the pipelines': a step schedule over the planned steps
        opt = torch.optim.SGD(self.parameters(), lr=self.hparams["optim"]["lr"])
        sched = WarmupCosine(opt, int(self.trainer.estimated_stepping_batches), warmup_steps=0)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _cfg(**changes: Any) -> Any:
    cfg = OmegaConf.create({
        "trainer": {"_target_": "lightning.pytorch.Trainer", "max_epochs": 2, "accelerator": "cpu",
                    "logger": False, "enable_progress_bar": False, "enable_model_summary": False},
        "logger": None, "resilience": {"checkpoint_every_n_steps": 0, "max_consecutive_bad_batches": 10},
        "ckpt": None, "seed": 0, "features": {"n_mels": 80}, "optim": {"lr": 0.01},
    })  # fmt: skip
    for key, value in changes.items():
        OmegaConf.update(cfg, key.replace("__", "."), value)
    return cfg


def _fit(cfg: Any, out: Path) -> _Module:
    module = _Module(cfg)
    fit(cfg, module, out, "train_loss", "min", train_dataloaders=loader())
    return module


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """last.ckpt of a finished 2-epoch run."""
    out = tmp_path_factory.mktemp("first")
    _fit(_cfg(), out)
    return out / "checkpoints" / "last.ckpt"


def test_settings_that_define_the_run_are_refused_by_name(finished: Path, tmp_path: Path) -> None:
    cfg = _cfg(ckpt=str(finished), features__n_mels=40, seed=3, trainer__max_epochs=3)
    with pytest.raises(ConfigError) as err:
        _fit(cfg, tmp_path / "resumed")
    message = str(err.value)
    assert f"features.n_mels: 80 in {finished}, 40 now" in message and "seed: 0 in" in message
    assert "trainer.max_epochs" not in message.split("what a resume may change")[0]  # that one may change
    assert not (tmp_path / "resumed" / "checkpoints").exists()  # refused before the first step


def test_more_epochs_and_a_new_learning_rate_apply_and_are_recorded(finished: Path, tmp_path: Path) -> None:
    module = _fit(_cfg(ckpt=str(finished), trainer__max_epochs=3, optim__lr=0.001), tmp_path / "resumed")
    # the third epoch only: steps 20-29 of the 30 now planned, at the new peak rate
    assert module.lrs == pytest.approx([0.001 * warmup_cosine(step, 30, 0) for step in range(20, 30)])
    ckpt = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    ran = ckpt["callbacks"][STATE_KEY]["settings"]
    assert ran["optim"]["lr"] == 0.001 and ran["trainer"]["max_epochs"] == 3 and ran["ckpt"] == str(finished)
    assert ckpt["hyper_parameters"]["optim"]["lr"] == 0.001 and ckpt["epoch"] == 2


def test_a_checkpoint_without_recorded_settings_is_compared_on_its_hyper_parameters(
    finished: Path, tmp_path: Path
) -> None:
    old = torch.load(finished, weights_only=True)
    del old["callbacks"][STATE_KEY]  # as written before the settings were recorded
    torch.save(old, tmp_path / "old.ckpt")
    with pytest.raises(ConfigError, match=r"features.n_mels: 80 in .*old.ckpt, 40 now"):
        _fit(_cfg(ckpt=str(tmp_path / "old.ckpt"), features__n_mels=40), tmp_path / "resumed")


def test_a_setting_the_code_gained_since_the_checkpoint_is_not_a_change(
    finished: Path, tmp_path: Path
) -> None:
    cfg = _cfg(ckpt=str(finished))
    cfg.features.new_option = True  # a key the checkpoint's run did not have yet
    _fit(cfg, tmp_path / "resumed")


def test_renamed_settings_keep_their_rule() -> None:
    """A caption checkpoint written when the optimiser's settings were ``model.lr``/``model.weight_decay``/
    ``model.warmup_steps``: a resume compares them with ``optim.*``, so a new peak or warm-up applies and a new
    weight decay is refused, named as it is called now."""
    saved = {"model": {"lr": 3e-3, "weight_decay": 1e-4, "warmup_steps": 100, "att_reg": 0.1}, "seed": 0}
    checkpoint = {"callbacks": {STATE_KEY: {"settings": saved}}}
    now = {"model": {"att_reg": 0.1}, "seed": 0,
           "optim": {"schedule": "warmup_cosine", "lr": 1e-3, "weight_decay": 1e-4, "warmup_steps": 50}}  # fmt: skip
    applied = check_resume(checkpoint, now, {}, RESUMABLE, "old.ckpt")
    assert applied == {"optim.lr": (3e-3, 1e-3), "optim.warmup_steps": (100, 50),
                       "optim.schedule": (None, "warmup_cosine")}  # fmt: skip
    now["optim"]["weight_decay"] = 1e-2
    with pytest.raises(ValueError, match=r"cannot change: optim.weight_decay: 0.0001 in old.ckpt, 0.01 now"):
        check_resume(checkpoint, now, {}, RESUMABLE, "old.ckpt")
