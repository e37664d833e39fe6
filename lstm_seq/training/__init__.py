"""Fault-tolerant and data-parallel training: atomic checkpoints with code-free loading, exact resume from
any checkpoint, skipping non-finite batches, samplers sharded over DDP replicas. No Hydra here."""

from lstm_seq.training.audit import TrainingAudit
from lstm_seq.training.callbacks import (
    LastCheckpoint,
    RunCheckpoint,
    fault_tolerance_callbacks,
    stop_message,
    training_report,
)
from lstm_seq.training.checkpoint_io import AtomicCheckpointIO, CheckpointError, load_checkpoint_file
from lstm_seq.training.distributed import end_data_parallel
from lstm_seq.training.nonfinite import NonFiniteGuard, NonFiniteLossError
from lstm_seq.training.resume import ResumableDataLoader, ResumeCallback
from lstm_seq.training.sampler import ResumableBatchSampler, SeededIndex, ShuffledBatchSampler

__all__ = [
    "AtomicCheckpointIO",
    "CheckpointError",
    "LastCheckpoint",
    "NonFiniteGuard",
    "NonFiniteLossError",
    "ResumableBatchSampler",
    "ResumableDataLoader",
    "ResumeCallback",
    "RunCheckpoint",
    "SeededIndex",
    "ShuffledBatchSampler",
    "TrainingAudit",
    "end_data_parallel",
    "fault_tolerance_callbacks",
    "load_checkpoint_file",
    "stop_message",
    "training_report",
]
