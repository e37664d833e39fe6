"""Batch samplers whose epoch is a pure function of ``(seed, epoch)``, so they can be sharded across
replicas and resumed in the middle of an epoch.

A :class:`ResumableBatchSampler` builds the *global* batch list of an epoch from ``(seed, epoch)`` alone,
keeps its replica's shard (:mod:`lstm_seq.training.sharding`) and skips the batches already trained on
when it is resumed. The position is counted by :class:`lstm_seq.training.resume.ResumeCallback` at the
level of batches that reached ``training_step`` (``batches_done``), not at the sampler: with prefetching
(Lightning's fetcher, DataLoader workers) the sampler runs ahead of training.

Epochs: Lightning calls :meth:`set_epoch` at the start of every epoch. Iterated on its own (never
``set_epoch``), a sampler advances one epoch per pass, like the old ``DurationBatchSampler`` did.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from torch.utils.data import Sampler

from lstm_seq.training.sharding import shard, shard_length, world

_MASK = (1 << 63) - 1


class SeededIndex(int):
    """A dataset index that carries a seed for that sample's own randomness in this epoch.

    A dataset that draws something per item (e.g. which captions of an image to train on) uses
    ``random.Random(index.seed)`` when it gets a :class:`SeededIndex`, so the draw depends on (seed, epoch,
    index) only: not on worker processes, prefetching or whether the run was resumed.
    """

    seed: int

    def __new__(cls, value: int, seed: int) -> SeededIndex:
        obj = super().__new__(cls, value)
        obj.seed = seed
        return obj

    def __reduce__(self) -> tuple[Any, tuple[int, int]]:  # to DataLoader workers and back
        return SeededIndex, (int(self), self.seed)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 63-bit seed for ``(seed, epoch, index)``."""
    return random.Random(f"{seed}/{epoch}/{index}").getrandbits(63) & _MASK


class _EpochRelay:
    """``batch_sampler.sampler`` of a :class:`ResumableBatchSampler`: Lightning calls ``set_epoch`` on a
    DataLoader's ``sampler`` and ``batch_sampler.sampler``, never on the batch sampler itself."""

    def __init__(self, owner: ResumableBatchSampler) -> None:
        self.owner = owner

    def set_epoch(self, epoch: int) -> None:
        self.owner.set_epoch(epoch)


class ResumableBatchSampler(Sampler[list[int]]):
    """Base class: subclasses implement :meth:`global_batches` and :meth:`num_global_batches`.

    Args:
        seed: base seed; an epoch's order depends on ``(seed, epoch)`` only.
        num_replicas: data-parallel replicas (default: ``torch.distributed``'s world size when initialised
            at first use, else 1). Give 1 for evaluation loaders that every rank reads in full.
        rank: this replica (default: ``torch.distributed``'s rank, else 0).
        seed_samples: yield :class:`SeededIndex` items (per-sample seeds) instead of plain ints.
    """

    def __init__(
        self,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        seed_samples: bool = False,
    ) -> None:
        super().__init__()
        self.seed = seed
        self.epoch = 0
        self.batches_done = 0  # batches of ``epoch`` that reached training_step (set by ResumeCallback)
        self.seed_samples = seed_samples
        self._num_replicas, self._rank = num_replicas, rank
        self._skip = 0
        self._auto_epoch = True
        self.sampler = _EpochRelay(self)

    # ------------------------------------------------------------------ to implement
    def global_batches(self, epoch: int) -> list[list[int]]:
        """All batches of ``epoch`` over the whole dataset, identical on every replica."""
        raise NotImplementedError

    def num_global_batches(self) -> int:
        """Number of global batches, the same for every epoch."""
        raise NotImplementedError

    # ------------------------------------------------------------------ sharding and epochs
    @property
    def num_replicas(self) -> int:
        return world(self._num_replicas, self._rank)[0]

    @property
    def rank(self) -> int:
        return world(self._num_replicas, self._rank)[1]

    def shard(self, epoch: int) -> list[list[int]]:
        """This replica's batches of ``epoch``."""
        n, r = world(self._num_replicas, self._rank)
        return shard(self.global_batches(epoch), n, r)

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before each epoch; a new epoch starts from its first batch."""
        self._auto_epoch = False
        if epoch != self.epoch:
            self.epoch, self._skip, self.batches_done = epoch, 0, 0

    def __len__(self) -> int:
        return shard_length(self.num_global_batches(), self.num_replicas)

    def __iter__(self) -> Iterator[list[int]]:
        epoch, skip = self.epoch, self._skip
        if self._auto_epoch:
            self.epoch += 1
        for batch in self.shard(epoch)[skip:]:
            if self.seed_samples:
                yield [SeededIndex(i, sample_seed(self.seed, epoch, i)) for i in batch]
            else:
                yield batch

    # ------------------------------------------------------------------ resuming
    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batches_done": self.batches_done, "num_replicas": self.num_replicas}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue after ``batches_done`` batches of ``epoch`` (the next epoch when that one is complete)."""
        epoch, done = int(state["epoch"]), int(state["batches_done"])
        if int(state.get("num_replicas", self.num_replicas)) != self.num_replicas:
            raise ValueError(
                f"the checkpoint was written with {state['num_replicas']} data-parallel replicas, this run has "
                f"{self.num_replicas}: a mid-epoch position cannot be carried over"
            )
        if done >= len(self):
            epoch, done = epoch + 1, 0
        self.epoch, self._skip, self.batches_done = epoch, done, done
        self._auto_epoch = False

    @property
    def at_epoch_start(self) -> bool:
        """True when the next batch is the first of an epoch."""
        return self._skip == 0


class ShuffledBatchSampler(ResumableBatchSampler):
    """Fixed-size batches of a random permutation of ``range(num_samples)`` (the last one may be smaller).

    Args:
        num_samples: dataset size.
        batch_size: samples per batch.
        shuffle: a new permutation each epoch (seeded by ``(seed, epoch)``); False keeps the dataset order.
        seed, num_replicas, rank, seed_samples: see :class:`ResumableBatchSampler`.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        seed_samples: bool = False,
    ) -> None:
        super().__init__(seed, num_replicas, rank, seed_samples)
        if num_samples < 1 or batch_size < 1:
            raise ValueError(f"need num_samples >= 1 and batch_size >= 1, got {num_samples}, {batch_size}")
        self.num_samples, self.batch_size, self.shuffle = num_samples, batch_size, shuffle

    def global_batches(self, epoch: int) -> list[list[int]]:
        order = list(range(self.num_samples))
        if self.shuffle:
            random.Random(f"{self.seed}/{epoch}").shuffle(order)
        return [order[i : i + self.batch_size] for i in range(0, self.num_samples, self.batch_size)]

    def num_global_batches(self) -> int:
        return -(-self.num_samples // self.batch_size)
