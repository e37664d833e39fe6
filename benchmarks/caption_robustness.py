"""Does the captioner see shapes, or only its own renderer's pixels? Object figures on scenes drawn by two
held-out renderers, side by side with the same figures on the corpus's validation split:

- ``held_out``: the renderer below (muted backgrounds; shapes by point-in-polygon sampling);
- ``held_out_2``: :mod:`benchmarks.heldout_scenes` (distance-field shapes, filled / outlined / soft-edged, of
  varying contrast, on backgrounds that carry the object colours as blobs, stripes, checkers, clutter and
  noise textures). Training was not designed against it: decide training changes on this one.

The first held-out renderer shares nothing with :mod:`lstm_seq.vision.data.synth` but the vocabulary: its own
numpy rasteriser (3×3 supersampled point-in-polygon coverage, so edges are anti-aliased differently), its own
shape proportions (an equilateral triangle, a five-point star with a fatter core, a narrower diamond, a
thicker cross), every shape rotated by up to ±25°, colour shades drawn in HSV around each colour name,
continuous sizes inside each size class, and four background families the corpus renderer does not draw
the same way (angled stripes, checkers, smooth blobs, low-frequency noise). Only colour–shape pairs that
occur in training are used (the composition test is ``test/novel_pair_recall``, not this), 1–3 objects,
apart and in a clear left-to-right order.

Figures (:func:`lstm_seq.metrics.caption.object_metrics`): object recall (the "colour shape" phrase is in
the caption), exact set (the caption names exactly the image's objects), count accuracy (as many objects
named as there are), repeat rate (a phrase named more often than the image holds it), colour accuracy (of
the objects whose shape is named, those with the right colour), hallucination rate (named phrases that are
not in the image); the JSON adds each set's colour confusions (true colour → named colour) and the number
of invented objects (a shape named more often than the image holds it).

    python -m benchmarks.caption_robustness --ckpt outputs/DATE/TIME/checkpoints/best.ckpt
    python -m benchmarks.caption_robustness --ckpt PATH --n 200 --seed 0 --save-grid grid.png
    python -m benchmarks.caption_robustness --ckpt PATH --smoke     # the smoke corpus's validation split

Writes ``benchmarks/results/<date>-<device>-caption-robustness[-TAG].json``.
"""

from __future__ import annotations

import argparse
import colorsys
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import heldout_scenes
from benchmarks.lstm_speed import device_name, write_result
from lstm_seq.metrics.caption import (
    caption_metrics,
    colour_confusions,
    mentioned_objects,
    novel_pair_recall,
    object_metrics,
    scene_confusion,
)
from lstm_seq.vision.data.corpus import load_corpus
from lstm_seq.vision.data.datasets import CaptionDataset
from lstm_seq.vision.data.synth import COLOURS, SHAPES, held_out_pairs
from lstm_seq.vision.module import SEARCH_KEYS, CaptionModule

RESULTS = Path(__file__).resolve().parent / "results"
# size classes as radius / image side: inside the corpus's classes, continuous
SIZE_RANGES = {"small": (0.095, 0.125), "big": (0.165, 0.205)}
BACKGROUND_FAMILIES = ("stripes", "checkers", "blobs", "lowfreq")


# ------------------------------------------------------------------------------------------ the renderer
def _outline(shape: str, r: float, angle: float) -> np.ndarray:
    """(P, 2) polygon of ``shape`` with circumradius ~``r`` around the origin, rotated by ``angle`` rad."""
    if shape == "square":
        q = 0.78 * r
        pts = [(-q, -q), (q, -q), (q, q), (-q, q)]
    elif shape == "triangle":  # equilateral, centred on its centroid, apex up
        pts = [(r * math.cos(a), r * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    elif shape == "diamond":
        pts = [(0, -r), (0.62 * r, 0), (0, r), (-0.62 * r, 0)]
    elif shape == "star":
        pts = [
            ((r if k % 2 == 0 else 0.5 * r) * math.cos(-math.pi / 2 + k * math.pi / 5),
             (r if k % 2 == 0 else 0.5 * r) * math.sin(-math.pi / 2 + k * math.pi / 5))
            for k in range(10)
        ]  # fmt: skip
    elif shape == "cross":
        w = 0.42 * r
        pts = [(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w), (-r, w),
               (-r, -w), (-w, -w)]  # fmt: skip
    else:
        raise ValueError(shape)
    p = np.asarray(pts, dtype=np.float64)
    c, s = math.cos(angle), math.sin(angle)
    return p @ np.array([[c, s], [-s, c]])


def _inside(px: np.ndarray, py: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon for arrays of points."""
    inside = np.zeros(px.shape, dtype=bool)
    x0, y0 = poly[-1]
    for x1, y1 in poly:
        crosses = (y1 > py) != (y0 > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = (x0 - x1) * (py - y1) / (y0 - y1) + x1
        inside ^= crosses & (px < xint)
        x0, y0 = x1, y1
    return inside


def _coverage(shape: str, cx: float, cy: float, r: float, angle: float, s: int, ss: int = 3) -> np.ndarray:
    """(s, s) fraction of each pixel covered by the shape (``ss``×``ss`` samples per pixel)."""
    offs = (np.arange(ss) + 0.5) / ss
    grid = (np.arange(s)[:, None] + offs[None, :]).reshape(-1)  # s·ss sample coordinates
    py, px = np.meshgrid(grid, grid, indexing="ij")
    if shape == "circle":
        hit = np.hypot(px - cx, py - cy) <= 0.88 * r
    else:
        poly = _outline(shape, r, angle) + np.array([cx, cy])
        hit = _inside(px, py, poly)
    return hit.reshape(s, ss, s, ss).mean(axis=(1, 3))


def _shade(rng: np.random.Generator, colour: str) -> np.ndarray:
    """An RGB shade (3,) in [0, 255] around the colour name, drawn in HSV."""
    r, g, b = (v / 255 for v in COLOURS[colour])
    h, sat, val = colorsys.rgb_to_hsv(r, g, b)
    if colour == "white":
        sat, val = rng.uniform(0.0, 0.08), rng.uniform(0.88, 1.0)
    else:
        h = (h + rng.uniform(-0.014, 0.014)) % 1.0
        sat = float(np.clip(sat * rng.uniform(0.82, 1.0), 0, 1))
        val = float(np.clip(val * rng.uniform(0.82, 1.05), 0, 1))
    return np.array(colorsys.hsv_to_rgb(h, sat, val)) * 255


def _background(rng: np.random.Generator, kind: str, s: int) -> np.ndarray:
    """(s, s, 3) float: muted tones, patterned by family."""
    a, b = rng.uniform(50, 125, size=3), rng.uniform(50, 125, size=3)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float64)
    if kind == "stripes":
        th = rng.uniform(0, math.pi)
        t = (np.sin((xx * math.cos(th) + yy * math.sin(th)) * 2 * math.pi / rng.uniform(5, 12)) > 0).astype(
            float
        )
    elif kind == "checkers":
        p = rng.uniform(5, 11)
        t = ((np.floor(xx / p) + np.floor(yy / p)) % 2).astype(float)
    elif kind == "blobs":
        t = np.zeros((s, s))
        for _ in range(int(rng.integers(3, 7))):
            mx, my, sd = rng.uniform(0, s), rng.uniform(0, s), rng.uniform(s / 8, s / 3)
            t += rng.uniform(0.4, 1.0) * np.exp(-((xx - mx) ** 2 + (yy - my) ** 2) / (2 * sd**2))
        t = t / max(t.max(), 1e-6)
    else:  # low-frequency noise: a coarse random grid, bilinearly upsampled
        k = int(rng.integers(3, 6))
        coarse = rng.uniform(0, 1, size=(k, k))
        up = torch.nn.functional.interpolate(
            torch.tensor(coarse)[None, None], size=(s, s), mode="bicubic", align_corners=True
        )
        t = np.clip(up[0, 0].numpy(), 0, 1)
    return a * (1 - t[..., None]) + b * t[..., None]


def held_out_scene(
    rng: np.random.Generator, s: int = 64, max_objects: int = 3
) -> tuple[np.ndarray, list[dict]]:
    """One scene: (s, s, 3) uint8 and its objects ``{"shape", "colour", "size", "x", "y"}``."""
    held = held_out_pairs()
    pairs = [(c, sh) for c in COLOURS for sh in SHAPES if (c, sh) not in held]
    n = int(rng.integers(1, max_objects + 1))
    objects: list[dict[str, Any]] = []
    while len(objects) < n:
        colour, shape = pairs[int(rng.integers(len(pairs)))]
        size = "big" if rng.random() < 0.5 else "small"
        r = rng.uniform(*SIZE_RANGES[size])
        for _ in range(300):
            x, y = rng.uniform(r + 0.02, 1 - r - 0.02, size=2)
            if all(
                math.hypot(x - o["x"], y - o["y"]) > r + o["r"] + 0.03 and abs(x - o["x"]) > 0.07
                for o in objects
            ):
                objects.append({"shape": shape, "colour": colour, "size": size, "x": x, "y": y, "r": r})
                break
        else:
            break  # no room left: fewer objects
    img = _background(rng, BACKGROUND_FAMILIES[int(rng.integers(len(BACKGROUND_FAMILIES)))], s)
    for o in objects:
        angle = math.radians(rng.uniform(-25, 25))
        cov = _coverage(o["shape"], o["x"] * s, o["y"] * s, o["r"] * s, angle, s)[..., None]
        img = img * (1 - cov) + _shade(rng, o["colour"]) * cov
    img = img + rng.normal(0, rng.uniform(0, 4), size=img.shape)  # sensor noise, sometimes none
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), [
        {k: v for k, v in o.items() if k != "r"} for o in objects
    ]


def held_out_set(n: int = 200, seed: int = 0, s: int = 64) -> tuple[np.ndarray, list[list[dict]]]:
    """``n`` scenes (n, s, s, 3) uint8 and their objects; a pure function of (n, seed, s)."""
    scenes = [held_out_scene(np.random.default_rng([seed, 7919, i]), s) for i in range(n)]
    return np.stack([im for im, _ in scenes]), [objs for _, objs in scenes]


# ----------------------------------------------------------------------------------------------- scoring
def caption_images(model: CaptionModule, images: torch.Tensor, batch: int = 64) -> list[str]:
    """Captions for normalised images (N, 3, S, S) with the checkpoint's own search settings."""
    caps: list[str] = []
    for i in range(0, images.shape[0], batch):
        caps += model.vocab.decode_batch(model.generate(images[i : i + batch]).tokens)
    return caps


def evaluate(model: CaptionModule, images: torch.Tensor, objects: list[list[dict]]) -> tuple[dict, list[str]]:
    """The object figures of ``images`` (N, 3, S, S), normalised, against their ``objects``; and the captions."""
    caps = caption_images(model, images)
    return object_metrics(caps, objects, COLOURS, SHAPES), caps


def confusions(caps: list[str], objects: list[list[dict]]) -> dict[str, Any]:
    """Colour confusions ``{true: {named: count}}``, the number of invented and missed objects
    (:func:`~lstm_seq.metrics.caption.scene_confusion`) and of extra objects (named beyond the scene's count)."""
    per_scene = [scene_confusion(c, o, COLOURS, SHAPES) for c, o in zip(caps, objects, strict=True)]
    return {
        "colour_confusions": colour_confusions(caps, objects, COLOURS, SHAPES),
        "invented": sum(len(p["invented"]) for p in per_scene),
        "missed": sum(len(p["missed"]) for p in per_scene),
        "extra": sum(
            max(0, len(mentioned_objects(c, COLOURS, SHAPES)) - len(o))
            for c, o in zip(caps, objects, strict=True)
        ),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", required=True, help="a captioning checkpoint (best.ckpt / last.ckpt)")
    parser.add_argument("--n", type=int, default=200, help="scenes per held-out renderer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--data-dir", default="data", help="where the scene corpus is cached (paths.data_dir)"
    )
    parser.add_argument("--smoke", action="store_true", help="validate on the smoke corpus (debug=smoke)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="decoding hyper-parameters to override, e.g. beam_size=1 repeat_penalty=0")  # fmt: skip
    parser.add_argument("--test", action="store_true",
                        help="also score the test split: BLEU-4, CIDEr-D, novel_pair_recall and the object figures")  # fmt: skip
    parser.add_argument("--tag", default="", help="suffix of the result file name")
    parser.add_argument("--save-grid", default=None, help="write the first 32 held-out scenes as one PNG")
    parser.add_argument("--out-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    model = CaptionModule.load(args.ckpt)
    for kv in args.set:
        key, val = kv.split("=", 1)
        settings = model.settings  # hparams["model"], read at each use
        if key == "repeat_words":  # a comma-separated list, e.g. repeat_words=circle,square
            settings[key] = [w for w in val.split(",") if w]
        else:
            settings[key] = type(settings[key])(float(val)) if key in settings else float(val)
    size = model.transform.size
    images, objects = held_out_set(args.n, args.seed, size)
    if args.save_grid:
        from PIL import Image

        k = min(32, len(images))
        rows = [np.concatenate(list(images[i : i + 8]), axis=1) for i in range(0, k - k % 8, 8)]
        Image.fromarray(np.concatenate(rows, axis=0)).resize((8 * size * 3, len(rows) * size * 3)).save(
            args.save_grid
        )
    held_x = model.transform.normalize(torch.from_numpy(images).permute(0, 3, 1, 2))
    held_m, held_caps = evaluate(model, held_x, objects)
    images2, objects2 = heldout_scenes.scene_set(args.n, args.seed, size)
    held2_x = model.transform.normalize(torch.from_numpy(images2).permute(0, 3, 1, 2))
    held2_m, held2_caps = evaluate(model, held2_x, objects2)

    corpus = load_corpus("scenes", args.data_dir, smoke=args.smoke, image_size=size)
    val_items = corpus.split("val")
    ds = CaptionDataset(val_items, model.vocab, model.transform, images=corpus.images)
    val_x = torch.stack([ds.load(i) for i in range(len(ds))])
    val_objs = [it.extra["objects"] for it in val_items]
    val_m, val_caps = evaluate(model, val_x, val_objs)

    test_m: dict[str, float] = {}
    if args.test:
        test_items = corpus.split("test")
        tds = CaptionDataset(test_items, model.vocab, model.transform, images=corpus.images)
        test_x = torch.stack([tds.load(i) for i in range(len(tds))])
        test_objs = [it.extra["objects"] for it in test_items]
        test_m, test_caps = evaluate(model, test_x, test_objs)
        test_m.update(caption_metrics(test_caps, [it.captions for it in test_items]))
        test_m["novel_pair_recall"] = novel_pair_recall(test_caps, test_objs, held_out_pairs())

    print(f"checkpoint {args.ckpt}")
    print(f"{'':18s} {'validation':>11s} {'held_out':>9s} {'held_out_2':>11s}")
    for k in held_m:
        print(f"{k:18s} {val_m[k]:11.3f} {held_m[k]:9.3f} {held2_m[k]:11.3f}")
    print(f"({len(val_items)} validation scenes, {len(images)} + {len(images2)} held-out scenes)")
    if test_m:
        print("test split: " + ", ".join(f"{k} {v:.3f}" for k, v in test_m.items()))
    for c, objs in list(zip(held2_caps, objects2, strict=True))[:5]:
        print(f"  {c!r:80s} ← {', '.join(o['size'] + ' ' + o['colour'] + ' ' + o['shape'] for o in objs)}")
    fields = {
        "checkpoint": str(args.ckpt),
        "decoding": {k: model.settings[k] for k in SEARCH_KEYS},
        "held_out": {"n": len(images), "seed": args.seed, **held_m, **confusions(held_caps, objects)},
        "held_out_2": {"n": len(images2), "seed": args.seed, **held2_m, **confusions(held2_caps, objects2)},
        "validation": {"n": len(val_items), **val_m, **confusions(val_caps, val_objs)},
        **({"test": test_m} if test_m else {}),
        "samples": [{"caption": c, "objects": o} for c, o in list(zip(held_caps, objects, strict=True))[:20]],
        "samples_2": [
            {"caption": c, "objects": o} for c, o in list(zip(held2_caps, objects2, strict=True))[:20]
        ],
    }
    suffix = "-caption-robustness" + (f"-{args.tag}" if args.tag else "")
    write_result(Path(args.out_dir), device_name(torch.device("cpu")), suffix, **fields)
    return fields


if __name__ == "__main__":
    main()
