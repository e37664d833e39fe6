"""Exact resume from any checkpoint: the loader position and the random states travel in the checkpoint.

How the pieces fit (Lightning 2.6):

* Lightning stores ``state_dict()`` of every training DataLoader that has ``state_dict``/``load_state_dict``
  in the checkpoint (``loops.fit_loop.state_dict.combined_loader``) and, on a resume in the middle of an
  epoch, calls ``load_state_dict`` before it creates the epoch's iterator (except when the loader was built
  before the restore; :class:`ResumeCallback` then has it rebuilt). A :class:`ResumableDataLoader`
  forwards this to its :class:`~lstm_seq.training.sampler.ResumableBatchSampler` (epoch + batches done).
  From a checkpoint written at the end of an epoch Lightning starts the next epoch afresh and loads no
  loader state; the sampler is then told the new epoch by ``set_epoch`` like in any other epoch.
* Lightning itself restores its batch counter (``batch_idx`` continues at the number of batches done), the
  optimizer, the schedulers and ``global_step``; it does not restore random states.
* :class:`ResumeCallback` keeps ``batches_done`` up to date (``on_train_batch_end``: the batch went through
  ``training_step`` and the optimizer step; prefetching makes the sampler's own position run ahead), saves
  the random states (python, numpy, torch, CUDA) in its own checkpoint entry and puts them back right
  before the first batch trained after a resume, wherever in the epoch the checkpoint was written.
* Nothing between a checkpoint and the next trained batch may draw from the global random generators in
  an uninterrupted run either, or the resumed run would start from a different state. The one such draw in
  Lightning's loop was the base seed that every new DataLoader iterator takes from the torch generator at
  the start of an epoch (and Lightning creates that iterator a different number of times in a resumed
  run); a :class:`ResumableDataLoader` therefore draws it from a generator of its own, seeded by
  ``(seed, epoch)``. Also for this reason a resumed run skips Lightning's sanity-check validation: the
  run passed it before, and it would run validation hooks (and their counters) a second time.

Limits: with ``num_workers > 0`` worker processes are seeded from that base seed, so per-sample randomness
should come from :class:`~lstm_seq.training.sampler.SeededIndex` rather than from the worker's global RNG
(and so should any randomness of a dataset's ``__getitem__``: prefetching runs it ahead of training).
Under DDP the checkpoint holds rank 0's random states, so a resumed multi-process run continues correctly
but not bit-identically.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader

from lstm_seq.training.sampler import ResumableBatchSampler, sample_seed


def capture_rng_state() -> dict[str, Any]:
    """The python, numpy, torch (and CUDA) random states as tensors and plain containers
    (loadable with ``torch.load(weights_only=True)``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002 (the legacy global state is what code may use)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    legacy = (kind, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached))
    np.random.set_state(legacy)  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ResumableDataLoader(DataLoader):
    """A DataLoader over a :class:`ResumableBatchSampler` whose ``state_dict`` Lightning saves in checkpoints.

    Takes the DataLoader's arguments; ``batch_sampler`` must be a :class:`ResumableBatchSampler`. Without a
    ``generator`` argument each iterator's base seed (the seed of the worker processes) comes from a
    generator of the loader's own, seeded by the sampler's ``(seed, epoch)``, not from the global torch
    generator (see the module docstring).
    """

    def __init__(self, dataset: Any, batch_sampler: ResumableBatchSampler, **kwargs: Any) -> None:
        if not isinstance(batch_sampler, ResumableBatchSampler):
            raise TypeError(
                f"batch_sampler must be a ResumableBatchSampler, got {type(batch_sampler).__name__}"
            )
        self._own_generator = kwargs.get("generator") is None
        if self._own_generator:
            kwargs["generator"] = torch.Generator()
        super().__init__(dataset, batch_sampler=batch_sampler, **kwargs)
        self.state_loaded = False

    @property
    def resumable_sampler(self) -> ResumableBatchSampler:
        assert isinstance(self.batch_sampler, ResumableBatchSampler)
        return self.batch_sampler

    def state_dict(self) -> dict[str, Any]:
        return self.resumable_sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.resumable_sampler.load_state_dict(state)
        self.state_loaded = True

    def __iter__(self) -> Iterator[Any]:
        if self._own_generator:
            sampler = self.resumable_sampler
            self.generator.manual_seed(sample_seed(sampler.seed, sampler.epoch, -1))
        return super().__iter__()


def train_loaders(trainer: pl.Trainer) -> list[Any]:
    """The training DataLoader(s) of ``trainer``, flattened."""
    loaders = trainer.train_dataloader
    if loaders is None:
        return []
    if isinstance(loaders, Mapping):
        return list(loaders.values())
    if isinstance(loaders, Iterable) and not isinstance(loaders, DataLoader):
        return list(loaders)
    return [loaders]


class ResumeCallback(pl.Callback):
    """Counts consumed training batches for :class:`ResumableDataLoader`, saves the random states and
    restores them on resume (see the module docstring).

    Two Lightning ordering problems are handled here. A module whose ``configure_optimizers`` reads
    ``trainer.estimated_stepping_batches`` (both pipelines do, for their schedules) makes Lightning build
    the training loader and its iterator *before* the checkpoint's loop state is restored, so the
    loader's state is never loaded: ``on_train_start`` (after the restore) then drops that loader so that
    Lightning builds it again at the start of the epoch, this time loading the saved position. And
    Lightning runs its sanity-check validation when a run resumes at an epoch boundary (not when it
    resumes mid-epoch): a resumed run never does (``num_sanity_val_steps`` is set to 0 on load).
    """

    def __init__(self) -> None:
        self._resuming = False
        self._pending_rng: dict[str, Any] | None = None  # saved random states not yet put back

    @property
    def state_key(self) -> str:
        return "ResumeCallback"

    def state_dict(self) -> dict[str, Any]:
        return {"rng": capture_rng_state()}

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        fit = checkpoint.get("loops", {}).get("fit_loop", {}).get("state_dict", {})
        loaders = fit.get("combined_loader") or []
        self._resuming = bool(loaders)
        ours = checkpoint.get("callbacks", {}).get(self.state_key, {})
        # checkpoints written before the states moved here kept them in the loader's state
        self._pending_rng = ours.get("rng") or next((s["rng"] for s in loaders if "rng" in s), None)
        trainer.num_sanity_val_steps = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._resuming:
            return
        self._resuming = False
        stale = [
            x for x in train_loaders(trainer) if isinstance(x, ResumableDataLoader) and not x.state_loaded
        ]
        if stale and trainer.fit_loop.restarting:
            trainer.fit_loop._combined_loader = None  # rebuilt (with the saved state) by the next setup_data

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._pending_rng is not None:
            restore_rng_state(self._pending_rng)
            self._pending_rng = None

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        for loader in train_loaders(trainer):
            if isinstance(loader, ResumableDataLoader):
                loader.resumable_sampler.batches_done = batch_idx + 1
