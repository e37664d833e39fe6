"""Splitting one epoch's batches over data-parallel replicas without losing or repeating a sample.

Every replica computes the same global list of batches (same seed, same epoch), makes its length a multiple
of the number of replicas, and takes every ``num_replicas``-th batch starting at its rank. The remainder is
handled by *splitting*, never by dropping or padding: while the count is not a multiple, the largest batch
(first on ties) is cut into two halves, which stay within any padded-frame budget the original met. So every
replica gets the same number of batches (DDP needs equal step counts) and each sample appears exactly once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.distributed as dist


def world(num_replicas: int | None = None, rank: int | None = None) -> tuple[int, int]:
    """``(num_replicas, rank)``: given values win; otherwise from ``torch.distributed`` when it is
    initialised, else ``(1, 0)``."""
    initialised = dist.is_available() and dist.is_initialized()
    n = num_replicas if num_replicas is not None else (dist.get_world_size() if initialised else 1)
    r = rank if rank is not None else (dist.get_rank() if initialised else 0)
    if n < 1 or not 0 <= r < n:
        raise ValueError(f"rank {r} is not in [0, num_replicas={n})")
    return n, r


def split_largest(batches: list[list[int]]) -> bool:
    """Cut the largest batch (the first on ties) into two halves, in place; False when every batch has a
    single sample and nothing can be split."""
    j = max(range(len(batches)), key=lambda k: (len(batches[k]), -k))
    b = batches[j]
    if len(b) < 2:
        return False
    batches[j : j + 1] = [b[: len(b) // 2], b[len(b) // 2 :]]
    return True


def balance(batches: Sequence[Sequence[int]], num_replicas: int) -> list[list[int]]:
    """Split batches until their number is a multiple of ``num_replicas`` (see the module docstring)."""
    out = [list(b) for b in batches]
    while len(out) % num_replicas:
        if not split_largest(out):
            n = sum(len(x) for x in out)
            raise ValueError(
                f"cannot give {num_replicas} replicas the same number of batches from {n} samples "
                "without repeating or dropping one; use fewer replicas or more data"
            )
    return out


def shard(batches: Sequence[Sequence[int]], num_replicas: int, rank: int) -> list[list[int]]:
    """This replica's batches: ``balance(batches)[rank::num_replicas]``."""
    return balance(batches, num_replicas)[rank::num_replicas]


def shard_length(num_batches: int, num_replicas: int) -> int:
    """Batches per replica for ``num_batches`` global batches (after :func:`balance`)."""
    return math.ceil(num_batches / num_replicas)
