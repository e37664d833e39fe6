"""Duration-bucketed batches under a padded-frame budget.

Utterances of similar length go together, and a batch holds as many as fit in
``max_frames`` padded feature frames (``batch size × longest utterance``), so long files never
run out of memory and little compute is spent on padding.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from torch.utils.data import Sampler


class DurationBatchSampler(Sampler[list[int]]):
    """Yields lists of dataset indices.

    Args:
        durations: seconds per utterance.
        max_frames: budget of padded frames per batch (batch size × longest frames).
        frames_per_second: feature frames per second (100 for a 10 ms hop).
        max_batch_size: hard cap on utterances per batch.
        shuffle: jitter lengths (±``jitter`` relative) before sorting and shuffle the batch order;
            each ``__iter__`` call is a new epoch with seed ``seed + epoch``.
        seed: base seed.
        sorted_first_epoch: SortaGrad (Amodei et al., 2016): the first epoch goes from the shortest
            to the longest batch, which gets CTC training off its initial plateau sooner.
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
    ) -> None:
        super().__init__()
        if max_frames <= 0:
            raise ValueError(f"max_frames must be positive, got {max_frames}")
        self.frames = [max(1, int(d * frames_per_second)) for d in durations]
        self.max_frames = max_frames
        self.max_batch_size = max_batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.jitter = jitter
        self.epoch = 0
        self.sorted_first_epoch = sorted_first_epoch
        self._len = len(self._batches(0))

    def _batches(self, epoch: int) -> list[list[int]]:
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
        if self.shuffle and not (self.sorted_first_epoch and epoch == 0):
            rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._batches(self.epoch)
        if self.shuffle:
            self.epoch += 1
        yield from batches

    def __len__(self) -> int:
        return self._len
