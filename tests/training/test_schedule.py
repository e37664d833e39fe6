"""The learning-rate schedules of both modules: any run length (even shorter than one warm-up step), a resumed
run that trains more epochs than the checkpoint's run planned (the schedule is stretched, no crash), and the
shared optimiser (lstm_seq/training/optim.py) giving each pipeline's default exactly the learning rates the
modules computed before it existed."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from lstm_seq.audio.module import ASRModule
from lstm_seq.training.optim import PRESETS, OptimConfig, lr_at, optim_config
from lstm_seq.training.schedule import OneCycle, WarmupCosine
from lstm_seq.vision.data.images import ImageTransform
from lstm_seq.vision.module import CaptionModule
from lstm_seq.vision.vocab import Vocabulary


def _asr() -> ASRModule:
    return ASRModule(model={"hidden_size": 8, "num_layers": 1}, optim={"lr": 1e-3, "pct_start": 0.1})


def _caption(lr_factor: float = 1.0, **optim: Any) -> CaptionModule:
    vocab = Vocabulary.build(["a red circle", "a blue square"], 1)
    decoder = {"variant": "show_tell", "embed_dim": 8, "hidden_size": 8}
    encoder = {"name": "resnet18", "lr_factor": lr_factor}
    return CaptionModule(vocab.to_dict(), ImageTransform(size=32).to_dict(), encoder, decoder, optim=optim)


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
    peak = module.hparams["optim"]["lr"]
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


# ------------------------------------------------------------------ the shared optimiser: same rates as before


def _before(module: Any, total: int) -> tuple[torch.optim.Optimizer, Any]:
    """The optimiser and schedule each module's ``configure_optimizers`` built before lstm_seq/training/optim.py
    (its code as it was, with the settings of its default run)."""
    if isinstance(module, ASRModule):  # AdamW(lr 3e-3, wd 1e-2) + OneCycle(pct_start 0.1)
        opt = torch.optim.AdamW(module.parameters(), lr=3e-3, weight_decay=1e-2)
        return opt, OneCycle(opt, total, 0.1)
    lr, factor = 3e-3, module.encoder_lr_factor  # AdamW(lr 3e-3, wd 1e-4) + WarmupCosine(100 steps)
    groups = [{"params": [p for p in module.decoder.parameters() if p.requires_grad], "lr": lr},
              {"params": [p for p in module.encoder.parameters() if p.requires_grad], "lr": lr * factor}]  # fmt: skip
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=1e-4)
    return opt, WarmupCosine(opt, total, 100)


def _rates(opt: torch.optim.Optimizer, sched: Any, steps: int) -> list[list[tuple[float, ...]]]:
    """Per step, every group's (lr, β1, weight decay), then an optimizer and a schedule step."""
    seen = []
    for _ in range(steps):
        seen.append([(g["lr"], g["betas"][0], g["weight_decay"]) for g in opt.param_groups])
        opt.step()
        sched.step()
    return seen


DEFAULT_RUNS = {
    "asr": lambda: ASRModule(model={"hidden_size": 8, "num_layers": 1}),
    "caption": lambda: _caption(0.1),
}


@pytest.mark.parametrize("pipeline", sorted(DEFAULT_RUNS))
@pytest.mark.parametrize("total", [1, 5, 10, 37, 600])
def test_default_runs_see_the_learning_rates_of_before(pipeline: str, total: int) -> None:
    """Every step of the default configs (ASR one-cycle, captions warm-up + cosine with the encoder at
    lr_factor × lr): the same learning rate, β1 and weight decay in every parameter group, bit for bit."""
    module = DEFAULT_RUNS[pipeline]()
    now = _rates(*_configure(module, total), total + 1)
    assert now == _rates(*_before(module, total), total + 1)


@pytest.mark.parametrize("pipeline", sorted(DEFAULT_RUNS))
def test_a_resume_mid_run_sees_the_learning_rates_of_before(pipeline: str) -> None:
    """Stopped after 9 of 40 steps — from a checkpoint's optimizer and schedule states written by today's code
    and by the code before it — and resumed: the rest of the uninterrupted run of before, step for step; with
    more epochs (60 steps) the curve of before for 60 steps from step 9 on."""
    module = DEFAULT_RUNS[pipeline]()
    whole = _rates(*_before(module, 40), 40)
    longer = _rates(*_before(module, 60), 60)
    for writer in (_configure, _before):
        opt, sched = writer(module, 40)
        _rates(opt, sched, 9)
        for total, expected in ((40, whole), (60, longer)):
            opt2, sched2 = _configure(module, total)
            opt2.load_state_dict(opt.state_dict())  # the order Lightning restores them in
            sched2.load_state_dict(sched.state_dict())
            assert _rates(opt2, sched2, total - 9) == expected[9:]


@pytest.mark.parametrize(
    ("total", "step"), [(20, 0), (20, 1), (20, 19), (100, 9), (100, 10), (100, 55), (1290, 1118)]
)
def test_one_cycle_is_pytorchs_one_cycle(total: int, step: int) -> None:
    """The ASR default against PyTorch's own ``OneCycleLR(anneal_strategy="cos")`` (where it works)."""
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=3e-3)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=total, pct_start=0.1)
    for _ in range(step):
        opt.step()
        ref.step()
    assert lr_at(PRESETS["onecycle"], step, total) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)


@pytest.mark.parametrize(("total", "step"), [(10, 0), (10, 1), (10, 2), (1500, 0), (1500, 99), (1500, 100),
                                             (1500, 1250), (1500, 1499)])  # fmt: skip
def test_warmup_cosine_is_the_caption_formula(total: int, step: int) -> None:
    """The caption default: ``lr·(s+1)/w`` for ``s < w = min(100, T // 5)``, then ``lr·½(1 + cos(π (s−w)/(T−w)))``."""
    w = min(100, total // 5)
    expected = 3e-3 * (
        (step + 1) / w if step < w else 0.5 * (1 + math.cos(math.pi * (step - w) / (total - w)))
    )
    assert lr_at(PRESETS["warmup_cosine"], step, total) == pytest.approx(expected, rel=1e-12)


def test_either_pipeline_takes_either_schedule() -> None:
    """``optim=warmup_cosine`` for ASR, ``optim.schedule=onecycle`` or ``constant`` for captions."""
    asr = ASRModule(model={"hidden_size": 8, "num_layers": 1}, optim=PRESETS["warmup_cosine"])
    opt, sched = _configure(asr, 500)
    assert isinstance(sched, WarmupCosine) and opt.param_groups[0]["weight_decay"] == 1e-4
    cap = _caption(schedule="onecycle", lr=1e-3)
    opt, sched = _configure(cap, 500)
    assert isinstance(sched, OneCycle) and opt.param_groups[0]["lr"] == pytest.approx(1e-3 / 25)
    opt, sched = _configure(_caption(schedule="constant", lr=2e-3), 50)
    assert {lr for step in _rates(opt, sched, 60) for lr, _, _ in step} == {2e-3}


def test_missing_optimiser_settings_take_the_pipelines_default() -> None:
    """Each module fills what its ``optim`` lacks from its own pipeline's preset; a wrong value is named."""
    assert _caption(lr=1e-3).optim_cfg == OptimConfig(schedule="warmup_cosine", lr=1e-3, weight_decay=1e-4)
    assert ASRModule(optim={"lr": 1e-3}).optim_cfg == OptimConfig(lr=1e-3)
    with pytest.raises(ValueError, match=r"optim\.schedule='cosine' is not one of"):
        optim_config({"schedule": "cosine"}, "onecycle")
    with pytest.raises(ValueError, match=r"unknown setting optim\.momentum"):
        optim_config({"momentum": 0.9}, "warmup_cosine")


def test_an_unknown_plan_keeps_the_peak() -> None:
    """No planned number of steps (``max_epochs=-1`` without ``max_steps``): AdamW at ``optim.lr``, no schedule."""
    module = DEFAULT_RUNS["asr"]()
    module._trainer = SimpleNamespace(estimated_stepping_batches=float("inf"))
    out = module.configure_optimizers()
    assert "lr_scheduler" not in out and out["optimizer"].param_groups[0]["lr"] == 3e-3
