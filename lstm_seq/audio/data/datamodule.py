"""Train/val/test loaders over manifests, batched by duration under a frame budget.

The training loader is a :class:`~lstm_seq.training.resume.ResumableDataLoader`: sharded over DDP ranks
and resumable mid-epoch. Validation and test loaders are not sharded: every rank reads them in full (the
error rates need all hypotheses; they are small), so the metrics are the same on every rank.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from lstm_seq.audio.data.augment import AugmentConfig, Augmenter
from lstm_seq.audio.data.bucketing import DurationBatchSampler
from lstm_seq.audio.data.datasets import SpeechDataset, collate
from lstm_seq.audio.data.manifest import read_manifest
from lstm_seq.audio.vocab import CharVocab
from lstm_seq.cpus import loader_workers
from lstm_seq.settings import at_least, check, positive
from lstm_seq.training.resume import ResumableDataLoader

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoaderConfig:
    """How utterances are batched and read (the loading keys of ``conf/data``)."""

    max_duration: float | None = positive(
        20.0
    )  # longest training/validation utterance (s); longer ones skipped
    max_frames: int = positive(6000)  # padded 10-ms feature frames per batch (the memory budget)
    num_workers: int = at_least(-1, -1)  # DataLoader worker processes; -1 = auto (lstm_seq.cpus.loader_workers)

    def __post_init__(self) -> None:
        check(self, "data.")


class ASRDataModule(pl.LightningDataModule):
    """Datasets and loaders for the three splits.

    Args:
        manifests: ``{"train"|"val"|"test": path}``; a split may be missing or None.
        vocab: character vocabulary.
        sample_rate: audio rate for the front end.
        max_duration: longest training/validation utterance (s); longer ones are skipped with a count.
        max_frames: padded 10-ms frames per batch (the memory budget).
        frames_per_second: feature frames per second.
        num_workers: DataLoader worker processes; -1 = auto: 0 without CUDA, a few with it
            (:func:`lstm_seq.cpus.loader_workers`).
        seed: shuffling seed.
        sorta_grad: first training epoch from short to long batches.
        augment: waveform augmentation of the training split only (None or ``enabled=False``: none); its
            draws are seeded by (seed, epoch, index), so they survive worker counts and resumes. Speed
            perturbation changes durations by up to its factor, so a batch may exceed ``max_frames`` by as much.
    """

    def __init__(
        self,
        manifests: dict[str, str | os.PathLike[str] | None],
        vocab: CharVocab,
        sample_rate: int = 16000,
        max_duration: float | None = LoaderConfig.max_duration,
        max_frames: int = LoaderConfig.max_frames,
        frames_per_second: float = 100.0,
        num_workers: int = LoaderConfig.num_workers,
        seed: int = 0,
        sorta_grad: bool = True,
        augment: AugmentConfig | None = None,
    ) -> None:
        super().__init__()
        self.manifests = {k: Path(v) for k, v in manifests.items() if v}
        self.vocab = vocab
        self.sample_rate = sample_rate
        self.max_duration = max_duration
        self.max_frames = max_frames
        self.fps = frames_per_second
        self.num_workers = loader_workers(num_workers)
        self.seed = seed
        self.sorta_grad = sorta_grad
        self.augment = augment if augment is not None and augment.enabled else None
        self.datasets: dict[str, SpeechDataset] = {}

    def dataset(self, split: str) -> SpeechDataset:
        """The (cached) dataset of ``split``; raises KeyError if it has no manifest."""
        if split not in self.datasets:
            if split not in self.manifests:
                raise KeyError(f"no manifest configured for the {split!r} split")
            utts = read_manifest(self.manifests[split])
            # the test split keeps long files: they are evaluated, batched alone by the budget
            max_dur = None if split == "test" else self.max_duration
            aug = Augmenter(self.augment, self.sample_rate) if split == "train" and self.augment else None
            ds = SpeechDataset(utts, self.vocab, self.sample_rate, max_dur, name=split, augment=aug)
            if len(ds) == 0:
                raise ValueError(f"{self.manifests[split]}: no usable utterances ({dict(ds.skipped)})")
            log.info("%s: %d utterances from %s (%s)", split, len(ds), self.manifests[split], ds.summary())
            self.datasets[split] = ds
        return self.datasets[split]

    def _loader(self, split: str, train: bool) -> DataLoader:
        ds = self.dataset(split)
        sampler = DurationBatchSampler(
            ds.durations,
            self.max_frames,
            self.fps,
            shuffle=train,
            seed=self.seed,
            sorted_first_epoch=train and self.sorta_grad,
            num_replicas=None if train else 1,
            rank=None if train else 0,
            seed_samples=train and self.augment is not None,
        )
        kwargs = {
            "collate_fn": collate,
            "num_workers": self.num_workers,
            "persistent_workers": self.num_workers > 0,
            "pin_memory": torch.cuda.is_available(),  # page-locked batches: asynchronous copies to the GPU
        }
        if train:
            return ResumableDataLoader(ds, batch_sampler=sampler, **kwargs)
        return DataLoader(ds, batch_sampler=sampler, **kwargs)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)
