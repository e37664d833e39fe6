"""Leaving data-parallel training cleanly before single-process work (test, plots, metrics.json)."""

from __future__ import annotations

import lightning.pytorch as pl
import torch.distributed as dist


def end_data_parallel(trainer: pl.Trainer) -> bool:
    """After ``trainer.fit`` under DDP: wait for every rank, then tear the process group down so that
    rank 0 can test with a single-device Trainer (whose metric syncs would otherwise wait for ranks that
    have exited). Returns True on the process that should go on: global rank 0 (always True without DDP)."""
    if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    return trainer.is_global_zero
