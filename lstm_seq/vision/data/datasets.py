"""The caption dataset over :class:`~lstm_seq.vision.data.formats.CaptionItem` records (training and evaluation),
with its collate function (images for generation are loaded by :class:`~lstm_seq.vision.captioner.Captioner`). An image that fails
to load is reported (with its path and reason) and dropped from its batch: one bad file never stops a run.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lstm_seq.settings import at_least, check, positive
from lstm_seq.training.sampler import SeededIndex
from lstm_seq.vision.data.augment import ImageAugment, augment_scene
from lstm_seq.vision.data.formats import CaptionItem
from lstm_seq.vision.data.images import DEFAULT_MAX_PIXELS, ImageLoadError, ImageTransform, load_image
from lstm_seq.vision.vocab import Vocabulary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoaderConfig:
    """How a captioning corpus is read, batched and transformed (the loading keys of ``conf/data``); the image
    transform and the vocabulary threshold go into the model's checkpoint."""

    image_size: int = positive(64)  # side S of the (squashed) input image
    batch_size: int = positive(16)  # images per batch
    num_workers: int = at_least(-1, -1)  # DataLoader worker processes; -1 = auto (lstm_seq.cpus.loader_workers)
    train_captions: int = positive(3)  # captions per image per training step (the encoder runs once for all)
    feature_cache: bool = False  # with a frozen encoder: grid features computed once, stored in cache_dir
    cache_dir: str | None = None  # where the feature cache lives
    min_freq: int = positive(1)  # words seen fewer times in training become <unk>
    max_len: int = positive(24)  # training captions cut to this many words
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # per-channel normalisation
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)
    max_pixels: int = positive(DEFAULT_MAX_PIXELS)  # larger image files are refused (decompression bombs)
    # training-time augmentation of the embedded scenes (captions rewritten to stay true); None = off
    augment: ImageAugment | None = field(default_factory=ImageAugment)

    def __post_init__(self) -> None:
        check(self, "data.")


class CaptionDataset(Dataset):
    """Images with their captions for training and evaluation.

    Args:
        items: the records of one split.
        vocab: encodes captions.
        transform: image → (3, S, S) tensor.
        captions_per_image: how many of an image's captions each item yields (sampled afresh each time,
            seeded per sample when the index is a :class:`~lstm_seq.training.sampler.SeededIndex`;
            None = all). The encoder then runs once per image for several captions.
        max_len: most words per training caption.
        images: (N, S, S, 3) uint8 array for ``"#<row>"`` items.
        max_pixels: larger image files are refused.
        augment: training augmentation (:mod:`lstm_seq.vision.data.augment`), applied when the index is a
            :class:`~lstm_seq.training.sampler.SeededIndex` (training loaders) and seeded by it; a flip, zoom
            or shift re-renders the captions of scene items from their moved objects. Not with cached
            features. Geometry needs scene items (``extra["objects"]``): on other data it must be off.

    With ``features`` set (see :func:`lstm_seq.vision.feature_cache.build_feature_cache`), items carry the cached
    grid (L, C) instead of the image.
    """

    def __init__(
        self,
        items: list[CaptionItem],
        vocab: Vocabulary,
        transform: ImageTransform,
        captions_per_image: int | None = None,
        max_len: int = 30,
        images: np.ndarray | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        augment: ImageAugment | None = None,
    ) -> None:
        if not items:
            raise ValueError("empty caption dataset")
        if augment is not None and augment.geometric and any("objects" not in it.extra for it in items):
            raise ValueError(
                "data.augment: a flip, zoom or shift needs scene objects to rewrite the captions; "
                "set hflip, scale and translate to 0 for this dataset"
            )
        self.items, self.vocab, self.transform = items, vocab, transform
        self.captions_per_image, self.max_len = captions_per_image, max_len
        self.images, self.max_pixels = images, max_pixels
        self.augment = augment
        self.features: np.ndarray | None = (
            None  # (N, L, C) cached grid features (lstm_seq.vision.feature_cache)
        )
        self.feature_errors: list[str | None] = []

    def __len__(self) -> int:
        return len(self.items)

    def load(self, i: int) -> torch.Tensor:
        """The transformed image of item ``i`` (3, S, S), normalised; raises :class:`ImageLoadError`."""
        return self.transform.normalize(self.pixels(i))

    def pixels(self, i: int) -> torch.Tensor:
        """Item ``i``'s image resized to (3, S, S), values in [0, 255] (uint8 or float); raises
        :class:`ImageLoadError`."""
        it = self.items[i]
        if it.image.startswith("#"):
            if self.images is None:
                raise ValueError(f"item {it.image_id} refers to an image array but none was given")
            arr = torch.from_numpy(np.ascontiguousarray(self.images[int(it.image[1:])])).permute(2, 0, 1)
            if arr.shape[-1] != self.transform.size:
                arr = torch.nn.functional.interpolate(
                    arr[None].float(), size=self.transform.size, mode="bilinear"
                )[0]
            return arr
        return self.transform.pixels(load_image(it.image, self.max_pixels))

    def __getitem__(self, i: int) -> dict[str, Any]:
        it = self.items[i]
        caps = it.captions
        image: torch.Tensor | None = None
        if self.augment is not None and self.features is None and isinstance(i, SeededIndex):
            try:
                image, new_caps = augment_scene(
                    self.pixels(i).float(), it.extra.get("objects"), it.extra.get("background"),
                    len(caps), self.augment, i.seed,
                )  # fmt: skip
                image = self.transform.normalize(image)
                caps = new_caps or caps
            except Exception:  # an image that does not load is reported below by load()
                image = None
        refs = caps
        if self.captions_per_image is not None and len(caps) > self.captions_per_image:
            # a SeededIndex (lstm_seq.training.sampler) makes the draw a function of (seed, epoch, i):
            # the same with or without workers, and after a mid-epoch resume
            rng = random.Random(i.seed) if isinstance(i, SeededIndex) else random
            caps = rng.sample(caps, self.captions_per_image)
        out: dict[str, Any] = {
            "id": it.image_id,
            "path": it.image,
            "refs": refs,
            "tokens": [self.vocab.encode(c, self.max_len) for c in caps],
        }
        if self.features is not None:
            if self.feature_errors and self.feature_errors[i]:
                out["error"] = str(self.feature_errors[i])
            else:
                out["image"] = torch.from_numpy(np.asarray(self.features[i], dtype=np.float32))
            return out
        try:
            out["image"] = image if image is not None else self.load(i)
        except ImageLoadError as exc:
            out["error"] = exc.reason
        except Exception as exc:  # any other decoder failure: report it, keep going
            out["error"] = f"{type(exc).__name__}: {exc}"
        return out


def collate_captions(batch: list[dict[str, Any]], pad_id: int = 0) -> dict[str, Any]:
    """Stack images and flatten (image, caption) pairs; items whose image failed are dropped (and logged).

    Returns:
        ``images`` (B, 3, S, S); ``tokens`` (N, T) padded with ``pad_id`` (``<start> … <end>``);
        ``lengths`` (N,); ``img_index`` (N,) row of each caption's image; ``refs`` and ``ids`` per image.
    """
    good = []
    for b in batch:
        if "error" in b:
            log.warning("skipping %s: %s", b["path"], b["error"])
        else:
            good.append(b)
    caps = [(bi, t) for bi, b in enumerate(good) for t in b["tokens"]]
    t_max = max((len(t) for _, t in caps), default=1)
    tokens = torch.full((len(caps), t_max), pad_id, dtype=torch.long)
    for n, (_, t) in enumerate(caps):
        tokens[n, : len(t)] = torch.tensor(t)
    return {
        "images": torch.stack([b["image"] for b in good]) if good else torch.zeros(0, 3, 1, 1),
        "tokens": tokens,
        "lengths": torch.tensor([len(t) for _, t in caps], dtype=torch.long),
        "img_index": torch.tensor([bi for bi, _ in caps], dtype=torch.long),
        "refs": [b["refs"] for b in good],
        "ids": [b["id"] for b in good],
        "skipped": [(b["path"], b["error"]) for b in batch if "error" in b],
    }

