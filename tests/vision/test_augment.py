"""Training augmentation keeps the captions true: flips swap left/right, colour jitter keeps colour names,
zoom and shift keep relations; draws are seeded per sample; the dataset re-renders captions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from lstm_seq.training.sampler import SeededIndex
from lstm_seq.vision.data.augment import (
    Geometry,
    ImageAugment,
    augment_scene,
    draw_geometry,
    jitter_with,
    warp,
)
from lstm_seq.vision.data.datasets import CaptionDataset
from lstm_seq.vision.data.formats import scene_items
from lstm_seq.vision.data.images import ImageTransform
from lstm_seq.vision.data.synth import (
    COLOURS,
    SceneConfig,
    SceneObject,
    _relation,
    colour_name,
    generate,
    render,
)
from lstm_seq.vision.vocab import Vocabulary

FLIP_ONLY = ImageAugment(hflip=1.0, scale=0, translate=0, brightness=0, contrast=0, saturation=0, hue=0)


def _two_objects() -> tuple[torch.Tensor, list[dict]]:
    objs = [
        SceneObject("circle", "red", "small", 0.25, 0.5, 0.11),
        SceneObject("square", "blue", "big", 0.72, 0.5, 0.19),
    ]
    img = render(objs, np.full((64, 64, 3), 90.0))
    return torch.from_numpy(img.copy()).permute(2, 0, 1).float(), [o.__dict__ for o in objs]


def test_flip_mirrors_the_image_and_swaps_left_and_right_in_the_captions() -> None:
    img, objs = _two_objects()
    out, caps = augment_scene(img, objs, "flat", 5, FLIP_ONLY, seed=0)
    assert torch.allclose(out, torch.flip(img, dims=[2]), atol=1e-3)
    assert caps is not None and len(caps) == 5
    joined = " | ".join(caps)
    for c in caps:  # objects are named left to right: now the blue square first
        if "red circle" in c and "blue square" in c and " and " in c:
            assert c.index("blue square") < c.index("red circle"), c
    assert "big blue square left of a small red circle" in joined or "small red circle right of" in joined
    assert "red circle left of" not in joined and "blue square right of" not in joined


def test_colour_jitter_keeps_every_colour_name_at_its_extremes() -> None:
    aug = ImageAugment()
    for name, rgb in COLOURS.items():
        # the prototype and the corpus's darkest, least saturated shade of it, next to a grey background
        shades = [np.array(rgb, float), np.array(rgb, float) * 0.8]
        for shade in shades:
            if name != "white":
                grey = shade.mean()
                shade = grey + (shade - grey) * 0.75
            img = torch.tensor(np.stack([shade, np.full(3, 90.0)], axis=1)[:, :, None], dtype=torch.float32)
            for b, c, s, h in itertools.product(
                (1 - aug.brightness, 1 + aug.brightness), (1 - aug.contrast, 1 + aug.contrast),
                (1 - aug.saturation, 1 + aug.saturation), (-aug.hue, aug.hue),
            ):  # fmt: skip
                out = jitter_with(img, b, c, s, h)[:, 0, 0].numpy()
                assert colour_name(out) == name, (name, shade, (b, c, s, h), out)


def test_zoom_and_shift_keep_relations_and_objects_inside_the_frame() -> None:
    _, records = generate(SceneConfig(n_train=60, n_val=0, n_test=0, seed=5))
    aug = ImageAugment(hflip=0.0, scale=0.1, translate=0.25)
    rng = np.random.default_rng(0)
    for r in records:
        objs = [SceneObject(**{**o, "rgb": tuple(o["rgb"])}) for o in r["objects"]]
        g = draw_geometry(rng, aug, objs)
        moved = [g.move(o) for o in objs]
        for o in moved:
            assert (
                o.radius - 1e-9 <= o.x <= 1 - o.radius + 1e-9
                and o.radius - 1e-9 <= o.y <= 1 - o.radius + 1e-9
            )
        for (a, b), (a2, b2) in zip(
            itertools.permutations(objs, 2), itertools.permutations(moved, 2), strict=True
        ):
            assert _relation(a, b) == _relation(a2, b2)


def test_warp_moves_pixels_where_the_objects_move() -> None:
    img, _ = _two_objects()
    g = Geometry(flip=False, s=1.0, tx=6 / 64, ty=-3 / 64)
    out = warp(img, g)
    # a shift by whole pixels is exact away from the borders
    assert torch.allclose(out[:, 10:50, 10:50], img[:, 13:53, 4:44], atol=1e-3)


def test_draws_are_seeded_per_sample_and_captions_are_re_rendered_in_the_dataset() -> None:
    images, records = generate(SceneConfig(n_train=8, n_val=0, n_test=0, seed=2))
    items = scene_items(records)
    vocab = Vocabulary.build(c for it in items for c in it.captions)
    ds = CaptionDataset(items, vocab, ImageTransform(64), 2, 24, images, augment=ImageAugment(hflip=1.0))
    a, b = ds[SeededIndex(3, 1234)], ds[SeededIndex(3, 1234)]
    assert torch.equal(a["image"], b["image"]) and a["tokens"] == b["tokens"]
    c = ds[SeededIndex(3, 99)]
    assert not torch.equal(a["image"], c["image"])
    assert a["refs"] != items[3].captions or len(items[3].extra["objects"]) == 1
    plain = ds[3]  # evaluation indices: no augmentation
    assert torch.equal(plain["image"], ds.load(3)) and plain["refs"] == items[3].captions
    no_aug = CaptionDataset(items, vocab, ImageTransform(64), 2, 24, images)
    assert torch.equal(no_aug[SeededIndex(3, 1234)]["image"], ds.load(3))


def test_geometry_refused_without_scene_objects() -> None:
    images, records = generate(SceneConfig(n_train=2, n_val=0, n_test=0))
    items = scene_items(records)
    for it in items:
        it.extra = {}
    vocab = Vocabulary.build(c for it in items for c in it.captions)
    with pytest.raises(ValueError, match="hflip"):
        CaptionDataset(items, vocab, ImageTransform(64), 2, 24, images, augment=ImageAugment())
    colour_only = ImageAugment(hflip=0, scale=0, translate=0)
    assert CaptionDataset(items, vocab, ImageTransform(64), 2, 24, images, augment=colour_only)[
        SeededIndex(0, 1)
    ]
    with pytest.raises(ValueError, match="scale"):
        ImageAugment(scale=0.3)
