"""Batch samplers: sharding over replicas loses and repeats nothing, positions resume exactly."""

from __future__ import annotations

import pickle
import random

import pytest

from lstm_seq.audio.data.bucketing import DurationBatchSampler
from lstm_seq.training.sampler import SeededIndex, ShuffledBatchSampler
from lstm_seq.training.sharding import balance, shard


def _durations(n: int = 157) -> list[float]:
    rng = random.Random(1)
    return [rng.uniform(0.4, 9.0) for _ in range(n)]


@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
@pytest.mark.parametrize("kind", ["duration", "shuffled"])
def test_shards_cover_each_sample_once_with_equal_batch_counts(kind: str, replicas: int) -> None:
    n = 157
    for epoch in range(3):
        per_rank = []
        for rank in range(replicas):
            if kind == "duration":
                s = DurationBatchSampler(_durations(n), 2000, seed=5, num_replicas=replicas, rank=rank)
            else:
                s = ShuffledBatchSampler(n, 10, seed=5, num_replicas=replicas, rank=rank)
            s.set_epoch(epoch)
            batches = list(s)
            assert len(batches) == len(s)  # what Lightning reads up front is what the epoch yields
            per_rank.append(batches)
        assert len({len(b) for b in per_rank}) == 1  # DDP needs the same number of steps on every rank
        seen = [i for batches in per_rank for b in batches for i in b]
        assert sorted(seen) == list(range(n))


def test_duration_budget_holds_after_balancing_and_epochs_differ() -> None:
    s = DurationBatchSampler(_durations(), 2000, seed=5, num_replicas=3, rank=1)
    frames = s.frames
    first = list(s.shard(0))
    assert all(max(frames[i] for i in b) * len(b) <= 2000 or len(b) == 1 for b in first)
    assert s.shard(0) == first and s.shard(1) != first  # a pure function of (seed, epoch)


def test_balance_splits_instead_of_padding_and_refuses_the_impossible() -> None:
    out = balance([[0, 1, 2, 3], [4], [5, 6]], 2)
    assert len(out) == 4 and sorted(i for b in out for i in b) == list(range(7))
    assert [len(b) for b in shard(out, 2, 0)] == [2, 1] and [len(b) for b in shard(out, 2, 1)] == [2, 2]
    with pytest.raises(ValueError, match="without repeating or dropping"):
        balance([[0], [1], [2]], 2)


def test_resume_position_skips_consumed_batches() -> None:
    s = ShuffledBatchSampler(50, 4, seed=2)
    s.set_epoch(3)
    full = list(s)
    r = ShuffledBatchSampler(50, 4, seed=2)
    r.load_state_dict({"epoch": 3, "batches_done": 5, "num_replicas": 1})
    r.set_epoch(3)  # Lightning sets the same epoch again: the position stays
    assert list(r) == full[5:]
    r.set_epoch(4)  # the next epoch starts from its first batch
    assert len(list(r)) == len(full)
    done = ShuffledBatchSampler(50, 4, seed=2)
    done.load_state_dict({"epoch": 3, "batches_done": len(full), "num_replicas": 1})
    assert done.epoch == 4 and done.at_epoch_start  # a finished epoch resumes at the next one
    with pytest.raises(ValueError, match="2 data-parallel replicas"):
        ShuffledBatchSampler(50, 4).load_state_dict({"epoch": 0, "batches_done": 1, "num_replicas": 2})


def test_seeded_indices_depend_on_seed_epoch_and_index_only() -> None:
    s = ShuffledBatchSampler(20, 5, seed=9, seed_samples=True)
    s.set_epoch(1)
    a = [i for b in s for i in b]
    assert all(isinstance(i, SeededIndex) for i in a)
    back = pickle.loads(pickle.dumps(a))  # to DataLoader workers and back
    assert [(int(i), i.seed) for i in back] == [(int(i), i.seed) for i in a]
    s.set_epoch(2)
    b = {int(i): i.seed for bb in s for i in bb}
    assert any(b[int(i)] != i.seed for i in a)
    assert [1, 2, 3][SeededIndex(1, 7)] == 2  # still indexes like an int
