"""Which data a captioning run uses: the embedded scene corpus or a real dataset (COCO, Flickr, Karpathy),
as items per split (train/val/test) plus, for the scenes, the in-memory image array and what their images
hold (:class:`Composition`: the test run scores the captions' objects against it).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lstm_seq.vision.data.formats import CaptionItem, read_coco, read_flickr, read_karpathy, scene_items
from lstm_seq.vision.data.synth import COLOURS, SHAPES, SceneConfig, held_out_pairs, load_or_generate

SMOKE_SCENES = {"n_train": 96, "n_val": 16, "n_test": 24}
SMOKE_ITEMS = 32  # per split for real datasets in smoke mode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Composition:
    """What a corpus knows of its images' contents: each item's ``extra["objects"]`` (``{"colour", "shape",
    ...}`` records), named by these words, with some colour–shape pairs kept out of training."""

    colours: tuple[str, ...]  # the colour words of an object's "<colour> <shape>" phrase
    shapes: tuple[str, ...]  # the shape words
    held_out: frozenset[tuple[str, str]]  # (colour, shape) pairs seen in the test split only


@dataclass
class Corpus:
    """Items per split and, for ``"#<row>"`` items, the (N, S, S, 3) uint8 image array."""

    splits: dict[str, list[CaptionItem]]
    images: np.ndarray | None = None
    missing: dict[str, int] = field(default_factory=dict)  # image files not found, per split (dropped)
    # the objects of every image are known (the embedded scenes): the test run measures how captions name
    # them; None for photo corpora (COCO, Flickr, Karpathy)
    composition: Composition | None = None

    def report(self) -> dict[str, int]:
        """``data/<split>/missing_images`` for metrics.json (splits with a file-based image)."""
        return {f"data/{split}/missing_images": n for split, n in sorted(self.missing.items())}

    def split(self, name: str) -> list[CaptionItem]:
        items = self.splits.get(name, [])
        if not items:
            raise ValueError(
                f"the {name!r} split is empty (have: {sorted(k for k, v in self.splits.items() if v)})"
            )
        return items


def _by_split(items: list[CaptionItem]) -> dict[str, list[CaptionItem]]:
    out: dict[str, list[CaptionItem]] = {"train": [], "val": [], "test": []}
    for it in items:
        if it.split == "all":  # no official split: a stable 90/5/5 by hashing the image id
            h = int(hashlib.md5(it.image_id.encode()).hexdigest(), 16) % 20
            it.split = "test" if h == 0 else ("val" if h == 1 else "train")
        out.setdefault(it.split, []).append(it)
    return out


def load_corpus(name: str, data_dir: str | os.PathLike[str], smoke: bool = False, **options: Any) -> Corpus:
    """Build the corpus named ``name``.

    Args:
        name: ``scenes`` | ``coco`` | ``flickr`` | ``karpathy``.
        data_dir: where generated corpora and caches live.
        smoke: a tiny version (a few dozen images per split).
        options: the data config's keys for that corpus (see conf/data/*.yaml):
            scenes: the fields of :class:`SceneConfig`;
            coco: ``annotations`` {split: json}, ``image_dirs`` {split: folder};
            flickr: ``token_file``, ``image_dir``, ``split_files`` {split: list file} (optional);
            karpathy: ``json_file``, ``image_dir``.
    """
    if name == "scenes":
        fields = {k: options[k] for k in SceneConfig.__dataclass_fields__ if k in options}
        if smoke:
            fields.update(SMOKE_SCENES)
        images, records = load_or_generate(SceneConfig(**fields), data_dir)
        scenes = Composition(tuple(COLOURS), SHAPES, frozenset(held_out_pairs()))
        return Corpus(_by_split(scene_items(records)), images, composition=scenes)
    if name == "coco":
        anns, dirs = options.get("annotations") or {}, options.get("image_dirs") or {}
        items = []
        for split, ann in anns.items():
            if ann:
                if split not in dirs:
                    raise ValueError(f"data.image_dirs.{split} is missing (data.annotations.{split} is set)")
                items += read_coco(ann, dirs[split], split)
        splits = _by_split(items)
    elif name == "flickr":
        splits = _by_split(
            read_flickr(options["token_file"], options["image_dir"], options.get("split_files") or None)
        )
    elif name == "karpathy":
        splits = _by_split(read_karpathy(options["json_file"], options["image_dir"]))
    else:
        raise ValueError(f"data.name={name!r}: expected scenes, coco, flickr or karpathy")
    if smoke:
        splits = {k: v[:SMOKE_ITEMS] for k, v in splits.items()}
    return _drop_missing(splits)


def _drop_missing(splits: dict[str, list[CaptionItem]]) -> Corpus:
    """Items whose image file does not exist are dropped and counted (one missing file never stops a run);
    a split none of whose images exists is an error naming its folder, raised before any training."""
    kept: dict[str, list[CaptionItem]] = {}
    missing: dict[str, int] = {}
    for split, items in splits.items():
        kept[split] = [it for it in items if os.path.isfile(it.image)]
        missing[split] = len(items) - len(kept[split])
        if items and not kept[split]:
            folder = os.path.commonpath([str(Path(it.image).parent) for it in items])
            raise ValueError(
                f"{folder}: none of the {len(items)} images of the {split!r} split is there "
                f"(e.g. {items[0].image}); check data.image_dir / data.image_dirs.{split}"
            )
        if missing[split]:
            example = next(it.image for it in items if not os.path.isfile(it.image))
            log.warning("%s: %d image file(s) not found, skipped (e.g. %s)", split, missing[split], example)
    return Corpus(kept, missing={k: n for k, n in missing.items() if splits[k]})
