"""How many CPU cores this process may use, for the pools that synthesis and beam tuning start."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """The cores this process may run on (its affinity mask where the OS has one, e.g. a container's CPU
    set), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity mask on macOS / Windows
        return max(1, os.cpu_count() or 1)


# data.num_workers = AUTO_WORKERS: the loaders pick (see loader_workers)
AUTO_WORKERS = -1
GPU_LOADER_WORKERS = (
    4  # loader processes for a run with CUDA: enough to feed the small models of this project
)


def loader_workers(requested: int, cuda: bool | None = None) -> int:
    """``data.num_workers``: a count is kept; ``-1`` (auto) is 0 without CUDA — on a CPU the loader's work is
    small next to the model's, which needs the cores — and with CUDA ``GPU_LOADER_WORKERS``, at most half
    the usable cores, so that reading and batching overlap the GPU's steps. ``cuda`` defaults to
    ``torch.cuda.is_available()``."""
    if requested != AUTO_WORKERS:
        return requested
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    return min(GPU_LOADER_WORKERS, usable_cpus() // 2) if cuda else 0
