"""Learning-rate schedules of both modules: a function of the optimizer step and the planned number of steps.
Which one a run uses, with which values: ``optim`` (lstm_seq/training/optim.py, conf/optim/).

Each schedule is ``lr(step) = peak × factor(step, total)`` for every parameter group (its peak is its learning
rate when the schedule is built), defined for any ``total >= 1`` and for steps past ``total`` (they keep the
final value). A schedule's saved state is its step counter only: loaded into a schedule built for a longer run
(a resume with a larger ``trainer.max_epochs``), it goes on from the checkpoint's step on the new, stretched
curve; with the same plan it continues exactly where it was.

* :class:`OneCycle` (speech): cosine warm-up from ``peak / 25`` to the peak over ``pct_start`` of the steps,
  then cosine down to ``peak / 25 / 1e4`` at the last step; Adam's β1 moves the other way (0.95 → 0.85 → 0.95).
  The values of ``torch.optim.lr_scheduler.OneCycleLR(anneal_strategy="cos")``, without its failures: a
  division by zero when ``pct_start × total`` is 1 and an error one step past its planned total.
* :class:`WarmupCosine` (captions): linear warm-up over ``warmup_steps`` (at most a fifth of the run), then
  cosine decay to 0.
* :class:`Constant`: the peak at every step.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler


def _cos(start: float, end: float, pct: float) -> float:
    """Cosine from ``start`` (pct 0) to ``end`` (pct 1)."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)


def one_cycle(step: int, total: int, pct_start: float, div_factor: float = 25.0,
              final_div_factor: float = 1e4) -> tuple[float, float]:  # fmt: skip
    """``(factor of the peak lr, position in [0, 1] of β1 between its low and high value)`` at ``step`` of a
    one-cycle run of ``total`` steps (0-based; steps past the end keep the last value)."""
    total = max(1, int(total))
    peak_at = pct_start * total - 1.0  # the step at the peak (OneCycleLR's phase boundary)
    last = total - 1.0
    start, end = 1.0 / div_factor, 1.0 / (div_factor * final_div_factor)
    if step <= peak_at:
        pct = step / peak_at if peak_at > 0 else 1.0
        return _cos(start, 1.0, pct), _cos(1.0, 0.0, pct)
    span = last - max(peak_at, 0.0)
    pct = min(1.0, (step - max(peak_at, 0.0)) / span) if span > 0 else 1.0
    return _cos(1.0, end, pct), _cos(0.0, 1.0, pct)


def warmup_cosine(step: int, total: int, warmup_steps: int) -> float:
    """Factor of the peak lr: linear warm-up over ``min(warmup_steps, total // 5)`` steps, then cosine to 0."""
    total = max(1, int(total))
    warm = min(warmup_steps, total // 5)
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))


class PlannedSchedule(LRScheduler):
    """Base class: ``lr = peak × factor(step)`` over a plan of ``total_steps`` optimizer steps.

    Args:
        optimizer: its groups' current learning rates are the peaks.
        total_steps: the planned optimizer steps (``trainer.estimated_stepping_batches``); at least 1 is used.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int) -> None:
        self.total_steps = max(1, int(total_steps))
        super().__init__(optimizer)

    def factor(self, step: int) -> float:
        raise NotImplementedError

    def get_lr(self) -> list[float]:
        f = self.factor(self.last_epoch)
        return [peak * f for peak in self.base_lrs]

    def state_dict(self) -> dict[str, Any]:
        """The step counters (and, for information, the plan): the rest comes from the run's settings."""
        return {
            "last_epoch": self.last_epoch,
            "_step_count": self._step_count,
            "total_steps": self.total_steps,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Go on from the saved step on this schedule's own plan, which may be longer than the saved one.
        Also reads the state of a ``OneCycleLR`` (checkpoints written before this class): its step."""
        self.last_epoch = int(state_dict["last_epoch"])
        self._step_count = int(state_dict.get("_step_count", self.last_epoch + 1))
        self._apply()

    def _apply(self) -> None:
        """Set the groups' values for the current step (also right after a load: the optimizer state
        Lightning restored holds the old plan's learning rate)."""
        lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        self._last_lr = lrs


class OneCycle(PlannedSchedule):
    """:func:`one_cycle` with Adam's β1 (or SGD's momentum) cycled between ``base_momentum`` and
    ``max_momentum``, against the learning rate."""

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int, pct_start: float = 0.3,
                 base_momentum: float = 0.85, max_momentum: float = 0.95) -> None:  # fmt: skip
        self.pct_start, self.base_momentum, self.max_momentum = pct_start, base_momentum, max_momentum
        super().__init__(optimizer, total_steps)

    def factor(self, step: int) -> float:
        return one_cycle(step, self.total_steps, self.pct_start)[0]

    def get_lr(self) -> list[float]:
        pos = one_cycle(self.last_epoch, self.total_steps, self.pct_start)[1]
        momentum = self.base_momentum + (self.max_momentum - self.base_momentum) * pos
        for group in self.optimizer.param_groups:
            if "betas" in group:
                group["betas"] = (momentum, *group["betas"][1:])
            elif "momentum" in group:
                group["momentum"] = momentum
        return super().get_lr()


class WarmupCosine(PlannedSchedule):
    """:func:`warmup_cosine`."""

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int) -> None:
        self.warmup_steps = warmup_steps
        super().__init__(optimizer, total_steps)

    def factor(self, step: int) -> float:
        return warmup_cosine(step, self.total_steps, self.warmup_steps)


class Constant(PlannedSchedule):
    """The peak learning rate at every step (a schedule all the same, so that a resume applies a new peak)."""

    def factor(self, step: int) -> float:
        return 1.0
