"""The learning-rate schedules of both modules: any run length (even shorter than one warm-up step), and a
resumed run that trains more epochs than the checkpoint's run planned (the schedule is stretched, no crash)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from lstm_seq.audio.module import ASRModule
from lstm_seq.vision.data.images import ImageTransform
from lstm_seq.vision.module import CaptionModule
from lstm_seq.vision.vocab import Vocabulary


def _asr() -> ASRModule:
    return ASRModule(model={"hidden_size": 8, "num_layers": 1}, optim={"lr": 1e-3, "pct_start": 0.1})


def _caption() -> CaptionModule:
    vocab = Vocabulary.build(["a red circle", "a blue square"], 1)
    decoder = {"variant": "show_tell", "embed_dim": 8, "hidden_size": 8}
    return CaptionModule(vocab.to_dict(), ImageTransform(size=32).to_dict(), {"name": "resnet18"}, decoder)


MODULES = {"asr": _asr, "caption": _caption}


def _configure(module: Any, total: int) -> tuple[torch.optim.Optimizer, Any]:
    """``configure_optimizers`` with a trainer that plans ``total`` optimizer steps (the only trainer
    attribute the modules read there)."""
    module._trainer = SimpleNamespace(estimated_stepping_batches=total)
    out = module.configure_optimizers()
    return out["optimizer"], out["lr_scheduler"]["scheduler"]


def _train(opt: torch.optim.Optimizer, sched: Any, steps: int) -> list[float]:
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.parametrize("pipeline", sorted(MODULES))
@pytest.mark.parametrize("total", [1, 2, 3, 10, 20])
def test_any_number_of_steps(pipeline: str, total: int) -> None:
    """``trainer.limit_train_batches=10`` made OneCycleLR divide by zero (pct_start × steps = 1)."""
    module = MODULES[pipeline]()
    opt, sched = _configure(module, total)
    lrs = _train(opt, sched, total + 2)  # and past the plan: the last value
    peak = module.hparams["optim"]["lr"] if pipeline == "asr" else module.hparams["lr"]
    assert all(0 < lr <= peak * (1 + 1e-12) for lr in lrs[:total])


def test_one_cycle_shape() -> None:
    """Warm-up from lr/25 to lr over pct_start of the steps, then down to lr/25/1e4 at the last step."""
    opt, sched = _configure(_asr(), 100)
    lrs = _train(opt, sched, 100)
    assert lrs[0] == pytest.approx(1e-3 / 25)
    assert max(lrs) == pytest.approx(1e-3) and lrs.index(max(lrs)) == 9
    assert lrs[-1] == pytest.approx(1e-3 / 25 / 1e4)
    betas = opt.param_groups[0]["betas"][0]
    assert betas == pytest.approx(0.95)  # beta1 cycles against the learning rate, back to its maximum


@pytest.mark.parametrize("pipeline", sorted(MODULES))
def test_resume_with_more_epochs_stretches_the_schedule(pipeline: str) -> None:
    """``ckpt=last.ckpt trainer.max_epochs=3`` on a finished 2-epoch run: the restored scheduler must
    follow the new plan (18 steps), not fail at step 13 of the old one (12)."""
    first = MODULES[pipeline]()
    opt, sched = _configure(first, 12)
    _train(opt, sched, 12)
    state_opt, state_sched = opt.state_dict(), sched.state_dict()

    resumed = MODULES[pipeline]()
    resumed.load_state_dict(first.state_dict())
    opt2, sched2 = _configure(resumed, 18)
    opt2.load_state_dict(state_opt)  # the order Lightning restores them in
    sched2.load_state_dict(state_sched)
    lrs = _train(opt2, sched2, 6)
    assert sched2.last_epoch == 18
    assert all(lr > 0 for lr in lrs)


def test_same_plan_resumes_the_same_learning_rates() -> None:
    """A resume with the planned length unchanged follows the very same schedule."""
    whole_opt, whole = _configure(_asr(), 20)
    whole_lrs = _train(whole_opt, whole, 20)
    first = _asr()
    opt, sched = _configure(first, 20)
    _train(opt, sched, 7)
    opt2, sched2 = _configure(_asr(), 20)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    assert _train(opt2, sched2, 13) == whole_lrs[7:]
