"""benchmarks/caption_robustness.py and benchmarks/heldout_scenes.py: the two held-out renderers, and the whole
benchmark on a smoke checkpoint."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import heldout_scenes
from benchmarks.caption_robustness import held_out_set, main
from lstm_seq.vision.data.synth import COLOURS, SHAPES, held_out_pairs
from tests._env import clean_env

ROOT = Path(__file__).resolve().parents[2]


def test_held_out_renderer_is_deterministic_and_uses_seen_pairs_only() -> None:
    a, objs = held_out_set(12, seed=1)
    b, _ = held_out_set(12, seed=1)
    assert a.shape == (12, 64, 64, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    held = held_out_pairs()
    assert all((o["colour"], o["shape"]) not in held for scene in objs for o in scene)
    assert {len(s) for s in objs} <= {1, 2, 3}


def test_second_renderer_is_deterministic_varied_and_uses_seen_pairs_only() -> None:
    a, objs = heldout_scenes.scene_set(40, seed=3)
    b, _ = heldout_scenes.scene_set(40, seed=3)
    assert a.shape == (40, 64, 64, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    flat = [o for scene in objs for o in scene]
    held = held_out_pairs()
    assert all((o["colour"], o["shape"]) not in held for o in flat)
    assert all(o["colour"] in COLOURS and o["shape"] in SHAPES for o in flat)
    assert {len(s) for s in objs} <= {1, 2, 3} and {o["style"] for o in flat} == set(heldout_scenes.STYLES)
    assert {s[0]["background"] for s in objs if s} == set(heldout_scenes.BACKGROUNDS)
    assert all(0.0 < o["x"] < 1.0 and 0.0 < o["y"] < 1.0 for o in flat)


def _scenes_with_colour_far_from_objects(images: np.ndarray, objs: list[list[dict]]) -> int:
    """Scenes whose pixels a quarter of the side away from every object include strongly coloured ones (a
    chroma, max - min of RGB, above 90 in the top decile; muted tones stay below 85)."""
    yy, xx = np.mgrid[0:64, 0:64] / 64
    count = 0
    for img, scene in zip(images, objs, strict=True):
        far = np.ones((64, 64), dtype=bool)
        for o in scene:
            far &= np.hypot(xx - o["x"], yy - o["y"]) > 0.25
        px = img[far].astype(int)
        count += len(px) > 0 and float(np.quantile(px.max(1) - px.min(1), 0.9)) > 90
    return count


def test_second_renderer_backgrounds_carry_object_colours() -> None:
    assert _scenes_with_colour_far_from_objects(*heldout_scenes.scene_set(30, seed=0)) >= 6
    assert _scenes_with_colour_far_from_objects(*held_out_set(30, seed=0)) == 0  # the first: muted only


@pytest.mark.parametrize("shape", SHAPES)
def test_distance_field_is_negative_inside_and_its_coverage_has_the_shapes_area(shape: str) -> None:
    r = 20.0
    sdf = heldout_scenes.shape_sdf(shape, 32.0, 32.0, r, 0.3, 0.5, 0.0, 64)
    assert sdf[32, 32] < 0 and sdf[0, 0] > 0
    area = float(heldout_scenes.coverage(sdf, 1.0).sum())
    if shape == "circle":
        expected = math.pi * (0.88 * r) ** 2
    else:  # shoelace formula on the same outline
        p = heldout_scenes._polygon_points(shape, r, 0.3, 0.5)
        expected = 0.5 * abs(
            float(np.dot(p[:, 0], np.roll(p[:, 1], 1)) - np.dot(p[:, 1], np.roll(p[:, 0], 1)))
        )
    assert area == pytest.approx(expected, rel=0.03)


@pytest.mark.slow
def test_benchmark_on_a_smoke_checkpoint(tmp_path: Path) -> None:
    env = clean_env()
    run = tmp_path / "run"
    subprocess.run(
        [sys.executable, "-m", "pipelines.caption", "debug=smoke", "logger=none", f"hydra.run.dir={run}",
         f"paths.data_dir={tmp_path / 'data'}"],
        cwd=ROOT, env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    res = main(["--ckpt", str(run / "checkpoints" / "best.ckpt"), "--smoke", "--data-dir", str(tmp_path / "data"),
                "--n", "16", "--out-dir", str(tmp_path / "results")])  # fmt: skip
    (written,) = (tmp_path / "results").glob("*-caption-robustness.json")
    saved = json.loads(written.read_text())
    for part in ("held_out", "held_out_2", "validation"):
        for key in ("object_recall", "exact_set", "count_accuracy", "repeat_rate", "hallucination_rate"):
            assert 0.0 <= saved[part][key] <= 1.0
        assert (
            saved[part]["invented"] >= 0
            and saved[part]["extra"] >= 0
            and isinstance(saved[part]["colour_confusions"], dict)
        )
    assert saved["held_out"]["n"] == 16 and saved["held_out_2"]["n"] == 16 and res["validation"]["n"] == 16
