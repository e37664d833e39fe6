"""Skip training batches whose loss or gradients are not finite; stop after too many in a row.

A NaN/inf loss (``on_before_backward``) or any NaN/inf gradient after backward (``on_before_optimizer_step``,
before gradient clipping, which would spread an inf over every parameter) marks the batch bad. Its
gradients are set to None, so the optimizer leaves every parameter and its moment estimates untouched: the
step is skipped and the weights stay finite. Under DDP the decision is OR-ed over ranks so that all replicas
skip together and their weights stay identical.

Counts are logged as ``train/skipped_batches`` (total) and kept in the checkpoint. After
``max_consecutive`` bad batches in a row the guard sets ``trainer.should_stop``: Lightning finishes the
epoch's bookkeeping, validates and writes ``last.ckpt`` (with the finite weights from before the bad
batches); :attr:`NonFiniteGuard.stop_message` then says what happened, and the pipelines raise
:class:`NonFiniteLossError` with it after writing metrics.json.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Training stopped because too many consecutive batches had a non-finite loss or gradient."""


class NonFiniteGuard(pl.Callback):
    """Args:
    max_consecutive: stop after this many bad batches in a row (0 or None: never stop, only skip).
    """

    def __init__(self, max_consecutive: int | None = 10) -> None:
        self.max_consecutive = int(max_consecutive or 0)
        self.skipped = 0  # bad batches in the whole run (restored on resume)
        self.consecutive = 0
        self.stop_message: str | None = None
        self._loss: Tensor | None = None  # this batch's loss, checked with the gradients (one host sync)
        self._stepped_bad: bool | None = None

    @property
    def state_key(self) -> str:
        return "NonFiniteGuard"

    def state_dict(self) -> dict[str, Any]:
        return {"skipped": self.skipped, "consecutive": self.consecutive}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.skipped, self.consecutive = int(state["skipped"]), int(state["consecutive"])

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._loss, self._stepped_bad = None, None

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: Tensor) -> None:
        self._loss = loss.detach()  # read with the gradients before the optimizer step, not here

    def _loss_is_bad(self) -> bool:
        return self._loss is not None and not bool(torch.isfinite(self._loss).all())

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        # one device→host sync per step for the loss and every gradient, not one per tensor
        checks = [torch.isfinite(g).all() for g in grads]
        if self._loss is not None:
            checks.append(
                torch.isfinite(self._loss).all().to(checks[0].device)
                if checks
                else torch.isfinite(self._loss).all()
            )
        bad = not bool(torch.stack(checks).all()) if checks else False
        bad = bool(trainer.strategy.reduce_boolean_decision(bad, all=False))
        if bad:
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p.grad = None
        self._stepped_bad = bad

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        bad = self._stepped_bad if self._stepped_bad is not None else self._loss_is_bad()
        if bad:
            self.skipped += 1
            self.consecutive += 1
            log.warning(
                "step %d: non-finite loss or gradient, batch skipped (%d in a row, %d in total)",
                trainer.global_step,
                self.consecutive,
                self.skipped,
            )
        else:
            self.consecutive = 0
        pl_module.log(
            "train/skipped_batches", float(self.skipped), on_step=True, on_epoch=False, batch_size=1
        )
        if self.max_consecutive and self.consecutive >= self.max_consecutive and self.stop_message is None:
            self.stop_message = (
                f"training stopped at step {trainer.global_step}: {self.consecutive} consecutive batches had a "
                f"non-finite loss or gradient (resilience.max_consecutive_bad_batches={self.max_consecutive}); "
                "they were skipped, so the weights in the last checkpoint are finite"
            )
            log.error(self.stop_message)
            trainer.should_stop = True
