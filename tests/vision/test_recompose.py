"""Figure–ground recomposition: the objects re-drawn exactly (positions, colour names) on backgrounds that carry
object colours; captions keep their objects; seeded."""

from __future__ import annotations

import numpy as np
import torch

from lstm_seq.metrics.caption import mentioned_objects
from lstm_seq.vision.data.augment import ImageAugment, augment_scene
from lstm_seq.vision.data.recompose import FAMILIES, recompose, scene_objects
from lstm_seq.vision.data.synth import COLOURS, SHAPES, SceneConfig, colour_name, generate, visible_fractions

OFF = {
    "hflip": 0.0,
    "scale": 0.0,
    "translate": 0.0,
    "brightness": 0.0,
    "contrast": 0.0,
    "saturation": 0.0,
    "hue": 0.0,
}


def _records(n: int = 40) -> tuple[np.ndarray, list[dict]]:
    return generate(SceneConfig(n_train=n, n_val=0, n_test=0, seed=3))


def test_recompose_is_seeded_and_keeps_every_objects_colour_name_at_its_centre() -> None:
    _, records = _records()
    checked = 0
    for i, rec in enumerate(records):
        objs = scene_objects(rec["objects"])
        img, name = recompose(objs, 64, np.random.default_rng([i, 2]))
        again, _ = recompose(objs, 64, np.random.default_rng([i, 2]))
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and np.array_equal(img, again)
        assert name in FAMILIES.values()
        for o, vis in zip(objs, visible_fractions(objs, 64), strict=True):
            if vis < 1.0:  # the centre may be under a later object
                continue
            y, x = int(o.y * 64), int(o.x * 64)
            patch = img[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3).astype(float).mean(0)
            assert colour_name(patch) == o.colour, (i, o, patch)
            checked += 1
    assert checked > 40


def test_recomposed_backgrounds_carry_object_colours_far_from_the_objects() -> None:
    """Pixels a quarter of the side away from every object: strongly coloured (RGB chroma > 90) in many
    recomposed scenes, in none of the corpus's own (muted) ones."""
    images, records = _records()
    yy, xx = np.mgrid[0:64, 0:64] / 64

    def coloured(img: np.ndarray, objs: list[dict]) -> bool:
        far = np.ones((64, 64), dtype=bool)
        for o in objs:
            far &= np.hypot(xx - o["x"], yy - o["y"]) > 0.25
        px = img[far].astype(int)
        return len(px) > 0 and float(np.quantile(px.max(1) - px.min(1), 0.9)) > 90

    new = [
        recompose(scene_objects(r["objects"]), 64, np.random.default_rng([i, 2]))[0]
        for i, r in enumerate(records)
    ]
    assert sum(coloured(im, r["objects"]) for im, r in zip(new, records, strict=True)) >= 10
    assert sum(coloured(im, r["objects"]) for im, r in zip(images, records, strict=True)) == 0


def test_augment_recomposes_with_captions_that_name_the_same_objects() -> None:
    images, records = _records(12)
    aug = ImageAugment(**OFF, recompose=1.0)
    for i, rec in enumerate(records):
        img = torch.from_numpy(images[i].copy()).permute(2, 0, 1).float()
        out, caps = augment_scene(img, rec["objects"], rec["background"], 5, aug, seed=i)
        assert out.shape == img.shape and not torch.equal(out, img)
        assert caps is not None and len(caps) == 5
        truth = sorted((o["colour"], o["shape"]) for o in rec["objects"])
        full = [c for c in caps if len(mentioned_objects(c, COLOURS, SHAPES)) == len(truth)]
        assert full and all(sorted(mentioned_objects(c, COLOURS, SHAPES)) == truth for c in full)
        for c in caps:
            if " background" in c:
                assert c.split(" background")[0].split()[-1] in FAMILIES.values()
    # probability 0: the image and the captions pass through untouched
    img = torch.from_numpy(images[0].copy()).permute(2, 0, 1).float()
    out, caps = augment_scene(
        img, records[0]["objects"], records[0]["background"], 5, ImageAugment(**OFF), seed=0
    )
    assert torch.equal(out, img) and caps is None
