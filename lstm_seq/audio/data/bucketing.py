"""Duration-bucketed batches under a padded-frame budget, sharded over DDP replicas and resumable.

Utterances of similar length go together, and a batch holds as many as fit in
``max_frames`` padded feature frames (``batch size × longest utterance``), so long files never
run out of memory and little compute is spent on padding.

The number of batches is the same in every epoch (Lightning reads ``len()`` once; an epoch with more
batches would be cut short and lose samples): the jittered packing of an epoch is brought to the count of
epoch 0 by splitting the largest batch or merging the two smallest neighbours that fit the budget. Across
replicas, batches are split further until each rank gets the same number (see
:mod:`lstm_seq.training.sharding`): no utterance is dropped or repeated in an epoch.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

from lstm_seq.training.sampler import ResumableBatchSampler
from lstm_seq.training.sharding import split_largest

log = logging.getLogger(__name__)


class DurationBatchSampler(ResumableBatchSampler):
    """Yields lists of dataset indices.

    Args:
        durations: seconds per utterance.
        max_frames: budget of padded frames per batch (batch size × longest frames).
        frames_per_second: feature frames per second (100 for a 10 ms hop).
        max_batch_size: hard cap on utterances per batch.
        shuffle: jitter lengths (±``jitter`` relative) before sorting and shuffle the batch order;
            epoch ``e`` uses seed ``seed + e``.
        seed: base seed.
        sorted_first_epoch: SortaGrad (Amodei et al., 2016): the first epoch goes from the shortest
            to the longest batch, which gets CTC training off its initial plateau sooner.
        num_replicas, rank: data-parallel sharding (default: from ``torch.distributed`` when initialised;
            give ``num_replicas=1`` for loaders every rank reads in full).
        seed_samples: yield :class:`~lstm_seq.training.sampler.SeededIndex` items, whose seeds depend on
            (seed, epoch, index) only (per-utterance augmentation draws).
    """

    def __init__(
        self,
        durations: Sequence[float],
        max_frames: int,
        frames_per_second: float = 100.0,
        max_batch_size: int = 512,
        shuffle: bool = True,
        seed: int = 0,
        jitter: float = 0.1,
        sorted_first_epoch: bool = False,
        num_replicas: int | None = None,
        rank: int | None = None,
        seed_samples: bool = False,
    ) -> None:
        super().__init__(seed, num_replicas, rank, seed_samples=seed_samples)
        if max_frames <= 0:
            raise ValueError(f"max_frames must be positive, got {max_frames}")
        self.frames = [max(1, int(d * frames_per_second)) for d in durations]
        self.max_frames = max_frames
        self.max_batch_size = max_batch_size
        self.shuffle = shuffle
        self.jitter = jitter
        self.sorted_first_epoch = sorted_first_epoch
        self._len = len(self._pack(0))

    def _cost(self, batch: list[int]) -> int:
        return max(self.frames[i] for i in batch) * len(batch)

    def _pack(self, epoch: int) -> list[list[int]]:
        """Batches in length order (before any shuffling of the batch order)."""
        rng = random.Random(self.seed + epoch)
        if self.shuffle:
            keys = [f * (1 + rng.uniform(-self.jitter, self.jitter)) for f in self.frames]
        else:
            keys = [float(f) for f in self.frames]
        order = sorted(range(len(self.frames)), key=lambda i: (keys[i], i))
        batches: list[list[int]] = []
        cur: list[int] = []
        longest = 0
        for i in order:
            longest_if = max(longest, self.frames[i])
            if cur and (longest_if * (len(cur) + 1) > self.max_frames or len(cur) >= self.max_batch_size):
                batches.append(cur)
                cur, longest_if = [], self.frames[i]
            cur.append(i)
            longest = longest_if
        if cur:
            batches.append(cur)
        return batches

    def _fit_count(self, batches: list[list[int]], target: int, epoch: int) -> list[list[int]]:
        """Split the largest / merge the cheapest fitting neighbours until there are ``target`` batches."""
        while len(batches) < target:
            if not split_largest(batches):
                break
        while len(batches) > target:
            fits = [
                k
                for k in range(len(batches) - 1)
                if len(batches[k]) + len(batches[k + 1]) <= self.max_batch_size
                and self._cost(batches[k] + batches[k + 1]) <= self.max_frames
            ]
            if not fits:
                log.warning("epoch %d: %d batches instead of %d (cannot merge)", epoch, len(batches), target)
                break
            k = min(fits, key=lambda k: (self._cost(batches[k] + batches[k + 1]), k))
            batches[k : k + 2] = [batches[k] + batches[k + 1]]
        return batches

    def global_batches(self, epoch: int) -> list[list[int]]:
        batches = self._pack(epoch)
        if epoch:
            batches = self._fit_count(batches, self._len, epoch)
        if self.shuffle and not (self.sorted_first_epoch and epoch == 0):
            random.Random(self.seed + epoch + 7919).shuffle(batches)
        return batches

    def num_global_batches(self) -> int:
        return self._len
