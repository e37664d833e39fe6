"""Train/val/test loaders over a caption corpus, in fixed-size batches of images.

The training loader is a :class:`~lstm_seq.training.resume.ResumableDataLoader`: shuffled by (seed, epoch),
sharded over DDP ranks, resumable mid-epoch, and each sample seeded by (seed, epoch, index) for its caption draw
and its augmentation, so a run is the same with any worker count and after a resume. Validation and test
loaders are not sharded: every rank reads them in full and in order (the scores need every caption).
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from lstm_seq.cpus import loader_workers
from lstm_seq.training import ResumableDataLoader, ShuffledBatchSampler
from lstm_seq.vision.data.augment import ImageAugment
from lstm_seq.vision.data.corpus import Corpus
from lstm_seq.vision.data.datasets import CaptionDataset, LoaderConfig, collate_captions
from lstm_seq.vision.data.images import ImageTransform
from lstm_seq.vision.encoder import CNNEncoder
from lstm_seq.vision.feature_cache import build_feature_cache
from lstm_seq.vision.vocab import Vocabulary

log = logging.getLogger(__name__)


class CaptionDataModule(pl.LightningDataModule):
    """Datasets and loaders for the three splits of ``corpus``.

    Args:
        corpus: the items per split (and the scenes' image array).
        vocab: encodes the captions (the model's own).
        transform: image → (3, S, S) tensor (the model's own).
        batch_size: images per batch.
        num_workers: DataLoader worker processes; -1 = auto (:func:`lstm_seq.cpus.loader_workers`).
        train_captions: captions per image per training step (drawn afresh each epoch; the encoder runs once
            for all of them); validation and test items carry all their captions.
        max_len: training captions cut to this many words.
        max_pixels: larger image files are refused.
        augment: augmentation of the training split only (None: none).
        seed: shuffling, caption-draw and augmentation seed.
        encoder: a frozen encoder whose grid features (L, C) are computed once per split into ``cache_dir``
            and read in place of the images (:func:`~lstm_seq.vision.feature_cache.build_feature_cache`);
            None: the loaders read images. It must be the encoder of the model that reads the batches.
        cache_dir: where the feature caches live (needed with ``encoder``).
    """

    def __init__(
        self,
        corpus: Corpus,
        vocab: Vocabulary,
        transform: ImageTransform,
        batch_size: int = LoaderConfig.batch_size,
        num_workers: int = LoaderConfig.num_workers,
        train_captions: int = LoaderConfig.train_captions,
        max_len: int = LoaderConfig.max_len,
        max_pixels: int = LoaderConfig.max_pixels,
        augment: ImageAugment | None = None,
        seed: int = 0,
        encoder: CNNEncoder | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        if encoder is not None and (cache_dir is None or not encoder.frozen):
            raise ValueError("the feature cache needs a frozen encoder and data.cache_dir")
        self.corpus, self.vocab, self.transform = corpus, vocab, transform
        self.batch_size, self.num_workers = batch_size, loader_workers(num_workers)
        self.train_captions, self.max_len, self.max_pixels = train_captions, max_len, max_pixels
        self.augment, self.seed = augment, seed
        self.encoder, self.cache_dir = encoder, Path(cache_dir) if cache_dir is not None else None
        self.datasets: dict[str, CaptionDataset] = {}

    def dataset(self, split: str) -> CaptionDataset:
        """The (cached) dataset of ``split``, with its feature cache when there is one; raises ValueError
        naming the split if it has no items."""
        if split not in self.datasets:
            train = split == "train"
            ds = CaptionDataset(
                self.corpus.split(split), self.vocab, self.transform, self.train_captions if train else None,
                self.max_len, self.corpus.images, self.max_pixels, self.augment if train else None,
            )  # fmt: skip
            if self.encoder is not None and self.cache_dir is not None:
                ds.features, ds.feature_errors = build_feature_cache(
                    self.encoder, ds, self.cache_dir, self.batch_size
                )
            log.info("%s: %d images", split, len(ds))
            self.datasets[split] = ds
        return self.datasets[split]

    def _loader(self, split: str, train: bool) -> DataLoader:
        ds = self.dataset(split)
        kwargs = {
            "num_workers": self.num_workers,
            "persistent_workers": self.num_workers > 0,
            "pin_memory": torch.cuda.is_available(),  # page-locked batches: asynchronous copies to the GPU
            "collate_fn": functools.partial(collate_captions, pad_id=self.vocab.pad_id),
        }
        if train:
            sampler = ShuffledBatchSampler(len(ds), self.batch_size, seed=self.seed, seed_samples=True)
            return ResumableDataLoader(ds, batch_sampler=sampler, **kwargs)
        return DataLoader(ds, batch_size=self.batch_size, shuffle=False, **kwargs)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)
