"""The optimiser and learning-rate schedule of both pipelines, in one place.

What is the learning-rate schedule? AdamW, and at optimizer step ``s`` of a run planned for ``T`` steps
(``trainer.estimated_stepping_batches``) every parameter group has ``lr(s) = optim.lr × lr_factor × f(s, T)``,
where ``lr_factor`` is the group's (1; the caption encoder's is ``encoder.lr_factor``) and ``f`` is named by
``optim.schedule``:

* ``onecycle`` (speech, conf/optim/onecycle.yaml): cosine from ``1/25`` up to 1 over the first ``pct_start`` of
  the steps, then cosine down to ``1/25/1e4``; Adam's β1 moves the other way (0.95 → 0.85 → 0.95). The values of
  PyTorch's ``OneCycleLR(anneal_strategy="cos")``.
* ``warmup_cosine`` (captions, conf/optim/warmup_cosine.yaml): linear from ``1/w`` to 1 over the first
  ``w = min(warmup_steps, T // 5)`` steps, then cosine down to 0.
* ``constant``: 1 at every step.

The formulas are :func:`~lstm_seq.training.schedule.one_cycle` and
:func:`~lstm_seq.training.schedule.warmup_cosine` (lstm_seq/training/schedule.py); :func:`lr_at` evaluates
them for a config. Steps past ``T`` keep the last value; a resume with more epochs stretches the curve and goes on
from the checkpoint's step (:class:`~lstm_seq.training.schedule.PlannedSchedule`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

from lstm_seq.settings import at_least, check, from_dict, one_of, positive, prob
from lstm_seq.training.schedule import (
    Constant,
    OneCycle,
    PlannedSchedule,
    WarmupCosine,
    one_cycle,
    warmup_cosine,
)

log = logging.getLogger(__name__)

SCHEDULES = ("onecycle", "warmup_cosine", "constant")
__all__ = ["PRESETS", "SCHEDULES", "OptimConfig", "lr_at", "optim_config", "optimizer_and_schedule"]


@dataclass(frozen=True)
class OptimConfig:
    """AdamW and its learning-rate schedule (``optim`` in both pipelines' configs: conf/optim/); stored in
    checkpoints. The defaults are the speech recogniser's (``PRESETS["onecycle"]``)."""

    schedule: str = one_of("onecycle", *SCHEDULES)  # the curve of the learning rate over the run (see above)
    lr: float = positive(3e-3)  # peak learning rate
    weight_decay: float = at_least(0, 1e-2)  # AdamW's decoupled weight decay
    pct_start: float = prob(0.1)  # onecycle: share of the steps spent warming up to lr
    warmup_steps: int = at_least(0, 100)  # warmup_cosine: linear warm-up steps (at most a fifth of the run)

    def __post_init__(self) -> None:
        check(self, "optim.")


# each pipeline's default: what conf/optim/<name>.yaml hold (tests/pipelines/test_config_defaults.py compares)
PRESETS: dict[str, OptimConfig] = {
    "onecycle": OptimConfig(),  # speech recognition
    "warmup_cosine": OptimConfig(schedule="warmup_cosine", weight_decay=1e-4),  # captioning
}


def optim_config(values: Mapping[str, Any] | OptimConfig | None, preset: str) -> OptimConfig:
    """An :class:`OptimConfig` from a plain dict (a config node, a checkpoint's ``optim``); the keys it lacks
    take the values of ``PRESETS[preset]``. An unknown key raises :class:`ValueError` naming it."""
    if isinstance(values, OptimConfig):
        return values
    return from_dict(OptimConfig, {**asdict(PRESETS[preset]), **dict(values or {})}, "optim")


def lr_at(cfg: OptimConfig, step: int, total: int) -> float:
    """The learning rate (of a group with ``lr_factor`` 1) at optimizer step ``step`` (0-based) of ``total``."""
    if cfg.schedule == "onecycle":
        return cfg.lr * one_cycle(step, total, cfg.pct_start)[0]
    if cfg.schedule == "warmup_cosine":
        return cfg.lr * warmup_cosine(step, total, cfg.warmup_steps)
    return cfg.lr


def _schedule(opt: torch.optim.Optimizer, cfg: OptimConfig, total: int) -> PlannedSchedule:
    if cfg.schedule == "onecycle":
        return OneCycle(opt, total, cfg.pct_start)
    if cfg.schedule == "warmup_cosine":
        return WarmupCosine(opt, total, cfg.warmup_steps)
    return Constant(opt, total)


def optimizer_and_schedule(
    groups: Iterable[torch.nn.Parameter] | Iterable[Mapping[str, Any]], cfg: OptimConfig, total_steps: float
) -> dict[str, Any]:
    """What a module's ``configure_optimizers`` returns: AdamW over ``groups`` and ``cfg.schedule`` stepped
    every optimizer step over ``total_steps``.

    Args:
        groups: parameters, or parameter groups (dicts with ``params`` and optionally ``lr_factor``: the group's
            peak is ``cfg.lr × lr_factor``).
        cfg: the optimiser settings.
        total_steps: the planned optimizer steps (``trainer.estimated_stepping_batches``). Unknown (infinite,
            ≤ 0 or over 10⁸) gives AdamW at the constant ``cfg.lr`` without a schedule.

    Returns:
        ``{"optimizer": AdamW, "lr_scheduler": {"scheduler": …, "interval": "step"}}`` (Lightning's format).
    """
    items = list(groups)
    if items and not isinstance(items[0], Mapping):
        items = [{"params": items}]
    built = []
    for group in items:
        group = dict(group)
        factor = float(group.pop("lr_factor", 1.0))
        built.append({**group, "lr": cfg.lr * factor})
    opt = torch.optim.AdamW(built, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if not math.isfinite(total_steps) or total_steps <= 0 or total_steps > 10**8:
        log.warning(
            "the number of training steps is unknown (%s): constant learning rate %g", total_steps, cfg.lr
        )
        return {"optimizer": opt}
    sched = _schedule(opt, cfg, int(total_steps))  # a resume that trains longer stretches it
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
