"""What each data-parallel replica trained on, checked across replicas.

:class:`TrainingAudit` counts the samples that reach ``training_step`` in each epoch on every rank,
together with their identities when the batch exposes them (``batch.paths`` of the speech batches,
``batch["ids"]`` of the caption batches). At the end of each epoch the ranks' counts and identities are
gathered: ``train/samples_seen`` (all ranks together) should equal the dataset size and
``train/samples_unique`` the same number (nothing doubled). At the end of training a SHA-256 of every
rank's parameters is gathered; ``train/weights_identical`` says whether all replicas ended with the same
weights. Single-process runs report the same keys with one rank. The count and the last finished epoch's
report survive a resume (they are in the checkpoint); the identities do not, so ``train/samples_unique`` is
left out for an epoch resumed mid-way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
import torch.distributed as dist


def sample_keys(batch: Any) -> Sequence[Hashable] | None:
    """Identities of a batch's samples, when the batch carries them."""
    if hasattr(batch, "paths"):
        return list(batch.paths)
    if isinstance(batch, dict) and "ids" in batch:
        return list(batch["ids"])
    return None


def batch_length(batch: Any) -> int:
    keys = sample_keys(batch)
    if keys is not None:
        return len(keys)
    try:
        return len(batch)
    except TypeError:
        return 0


def _gather(obj: Any) -> list[Any]:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        out: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out
    return [obj]


def parameters_digest(module: torch.nn.Module) -> str:
    """SHA-256 over every parameter's name and bytes (float32 on the CPU)."""
    h = hashlib.sha256()
    for name, p in module.named_parameters():
        h.update(name.encode())
        h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class TrainingAudit(pl.Callback):
    """Fills :attr:`report` (``train/samples_seen``, ``train/samples_unique``, ``train/world_size``,
    ``train/weights_identical``) on every rank; the pipelines write it to metrics.json on rank 0."""

    def __init__(self) -> None:
        self.report: dict[str, Any] = {}
        self._count = 0
        self._keys: list[Hashable] = []
        self._keys_complete = True  # False in an epoch resumed mid-way: the identities before are not kept

    @property
    def state_key(self) -> str:
        return "TrainingAudit"

    def state_dict(self) -> dict[str, Any]:
        # the count only (identities would make checkpoints grow with the data), and the last epoch's report
        return {"count": self._count, "report": dict(self.report)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._count, self._keys, self._keys_complete = int(state["count"]), [], False
        self.report = dict(state.get("report", {}))  # a run resumed with nothing left to train reports it

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx == 0:  # an epoch's first batch (also after resuming at an epoch boundary)
            self._count, self._keys, self._keys_complete = 0, [], True
        self._count += batch_length(batch)
        self._keys.extend(sample_keys(batch) or [])

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        parts = _gather((self._count, self._keys))
        self.report["train/world_size"] = len(parts)
        self.report["train/samples_seen"] = sum(c for c, _ in parts)
        keys = [k for _, ks in parts for k in ks]
        self.report.pop("train/samples_unique", None)
        if keys and self._keys_complete:
            self.report["train/samples_unique"] = len(set(keys))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # at the end of fit rather than of training: also reached when a resumed run had nothing to train
        digests = _gather(parameters_digest(pl_module))
        self.report["train/weights_identical"] = len(set(digests)) == 1
