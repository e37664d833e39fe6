"""The embedded scene corpus: determinism, the compositional split, caption templates, the cache."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lstm_seq.metrics.caption import novel_pair_recall
from lstm_seq.vision.data.synth import (
    BACKGROUNDS,
    COLOURS,
    MIN_VISIBLE,
    ROTATION,
    SHAPES,
    SIZE_RANGES,
    SceneConfig,
    SceneObject,
    colour_name,
    generate,
    held_out_pairs,
    load_or_generate,
    visible_fractions,
)

CFG = SceneConfig(n_train=120, n_val=20, n_test=40, seed=3)


def test_generation_is_deterministic() -> None:
    a_img, a_rec = generate(CFG)
    b_img, b_rec = generate(CFG)
    assert np.array_equal(a_img, b_img)
    assert a_rec == b_rec
    assert a_img.shape == (180, 64, 64, 3) and a_img.dtype == np.uint8
    c_img, _ = generate(SceneConfig(n_train=120, n_val=20, n_test=40, seed=4))
    assert not np.array_equal(a_img, c_img)


def test_vocabulary_of_the_world() -> None:
    assert len(SHAPES) >= 5 and len(COLOURS) == 8 and len(BACKGROUNDS) == 7
    held = held_out_pairs()
    assert len(held) == 8 and {c for c, _ in held} == set(COLOURS)


def test_held_out_pairs_only_in_test_and_in_every_test_image() -> None:
    _, records = generate(CFG)
    held = held_out_pairs()
    backgrounds, counts = set(), set()
    for r in records:
        pairs = {(o["colour"], o["shape"]) for o in r["objects"]}
        if r["split"] == "test":
            assert pairs & held, r
        else:
            assert not pairs & held, r
        backgrounds.add(r["background"])
        counts.add(len(r["objects"]))
        assert len(r["captions"]) == 5 and len(set(r["captions"])) == 5
        for o in r["objects"]:  # every object is named in the first caption
            assert f"{o['colour']} {o['shape']}" in " ".join(r["captions"])
    assert backgrounds == set(BACKGROUNDS)
    assert counts == {1, 2, 3}


def _true_relation(a: dict, b: dict) -> str:
    """Where ``a`` is with respect to ``b`` along the dominant axis (image y grows downwards)."""
    dx, dy = a["x"] - b["x"], a["y"] - b["y"]
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


def test_relations_follow_positions() -> None:
    """Every caption of a two-object scene that states a relation states a true one, in either order."""
    _, records = generate(CFG)
    relations = ("left of", "right of", "above", "below")
    seen: set[str] = set()
    for r in records:
        if len(r["objects"]) != 2:
            continue
        a, b = r["objects"]
        phrase = {id(o): f"{o['size']} {o['colour']} {o['shape']}" for o in (a, b)}
        true = {f"a {phrase[id(x)]} {_true_relation(x, y)} a {phrase[id(y)]}" for x, y in ((a, b), (b, a))}
        for c in r["captions"]:
            if any(f" {w} " in f" {c} " for w in relations):
                assert c in true, (c, true, r["objects"])
                seen.add(next(w for w in relations if f" {w} " in f" {c} "))
    assert seen == set(relations)  # every relation word was checked at least once


def test_cache_is_reused_and_identical(tmp_path: Path) -> None:
    small = SceneConfig(n_train=10, n_val=2, n_test=4)
    img1, rec1 = load_or_generate(small, tmp_path)
    folder = tmp_path / "scenes" / small.key()
    stamp = (folder / "images.npy").stat().st_mtime_ns
    img2, rec2 = load_or_generate(small, tmp_path)
    assert (folder / "images.npy").stat().st_mtime_ns == stamp
    assert np.array_equal(img1, img2) and rec1 == rec2
    assert [p.name for p in (tmp_path / "scenes").iterdir()] == [small.key()]


def test_novel_pair_recall() -> None:
    objs = [
        [{"colour": "red", "shape": "circle"}, {"colour": "blue", "shape": "star"}],
        [{"colour": "green", "shape": "square"}],
    ]
    held = held_out_pairs()
    assert ("red", "circle") in held and ("green", "square") in held and ("blue", "star") not in held
    assert novel_pair_recall(["a big red circle and a blue star", "a green circle"], objs, held) == 0.5
    assert novel_pair_recall(["a red circles", "a green square"], objs, held) == 0.5
    assert math.isnan(novel_pair_recall(["a blue star"], objs[:1], {("green", "square")}))


def test_regeneration_is_byte_identical_and_the_version_is_in_the_key(tmp_path: Path) -> None:
    small = SceneConfig(n_train=12, n_val=3, n_test=5, seed=9)
    load_or_generate(small, tmp_path / "a")
    load_or_generate(small, tmp_path / "b")
    folder = Path("scenes") / small.key()
    assert (tmp_path / "a" / folder / "images.npy").read_bytes() == (
        tmp_path / "b" / folder / "images.npy"
    ).read_bytes()
    assert (tmp_path / "a" / folder / "captions.json").read_bytes() == (
        tmp_path / "b" / folder / "captions.json"
    ).read_bytes()
    assert small.key() != "3d0e68814786"  # not the version-1 key of this config


def test_variety_stays_inside_each_name() -> None:
    _, records = generate(CFG)
    angles, radii = [], {"small": [], "big": []}
    for r in records:
        objs = [SceneObject(**{**o, "rgb": tuple(o["rgb"])}) for o in r["objects"]]
        assert min(visible_fractions(objs, 64)) >= MIN_VISIBLE, r  # occlusion never hides an identity
        for o in objs:
            lo, hi = SIZE_RANGES[o.size]
            assert lo <= o.r <= hi
            assert abs(o.angle) <= ROTATION[o.shape]
            assert colour_name(o.rgb) == o.colour, (o.rgb, o.colour)
            angles.append(abs(o.angle))
            radii[o.size].append(o.r)
    assert max(angles) > 15  # rotations, continuous sizes and shades are really there
    assert len(set(radii["small"])) > 20 and max(radii["small"]) < min(radii["big"])
    assert colour_name(COLOURS["orange"]) == "orange" and colour_name((128, 128, 128)) == "grey"
