"""A tiny real training setup for the fault-tolerance tests: regression with dropout on random data."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import Dataset

from lstm_seq.training import ResumableDataLoader, ShuffledBatchSampler


class Points(Dataset):
    """``n`` random points (8 features) with a linear target; items carry their index as ``id``."""

    def __init__(self, n: int = 40) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 8, generator=g)
        self.y = self.x @ torch.arange(8.0) + 0.1 * torch.randn(n, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"id": int(i), "x": self.x[i], "y": self.y[i]}


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "ids": [it["id"] for it in items],
        "x": torch.stack([it["x"] for it in items]),
        "y": torch.stack([it["y"] for it in items]),
    }


def loader(n: int = 40, batch_size: int = 4, seed: int = 0, **kw: Any) -> ResumableDataLoader:
    sampler = ShuffledBatchSampler(n, batch_size, seed=seed, **kw)
    return ResumableDataLoader(Points(n), batch_sampler=sampler, collate_fn=collate)


class Regressor(pl.LightningModule):
    """MLP with dropout (so the random state matters); ``bad_steps``: global steps whose loss is NaN."""

    def __init__(self, bad_steps: tuple[int, ...] = (), schedule: bool = False) -> None:
        super().__init__()
        self.schedule = (
            schedule  # a step schedule sized by trainer.estimated_stepping_batches, as the pipelines'
        )

        self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Dropout(0.3), torch.nn.Linear(16, 1))
        self.bad_steps = set(bad_steps)
        self.seen: list[int] = []

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        self.seen.extend(batch["ids"])
        loss = torch.nn.functional.mse_loss(self.net(batch["x"]).squeeze(-1), batch["y"])
        if self.global_step in self.bad_steps:
            loss = loss * float("nan")
        return loss

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.parameters(), lr=1e-2)
        if not self.schedule:
            return opt
        total = int(self.trainer.estimated_stepping_batches)  # makes Lightning build the loader early
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 - step / (total + 1))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
