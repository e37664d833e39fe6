"""The embedded caption corpus: deterministic synthetic scenes rendered with Pillow.

Each image holds 1–3 objects (6 shapes, 8 colours, 2 sizes) on a flat, gradient, noise or texture
background; each has 5 reference captions drawn from varied templates that name the objects, their
positions and spatial relations ("a small red circle left of a big blue square"). Objects are listed
left to right.

Compositional split: 8 colour–shape pairs (each colour once) never occur in train or validation; every
test image contains at least one of them, so the test score measures composition, not memory.

Generation is a pure function of :class:`SceneConfig` (each image from its own seeded RNG), cached under
``<data_dir>/scenes/<hash>/`` as ``images.npy`` (N, H, W, 3) uint8 + ``captions.json``; a regeneration
gives identical bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "diamond", "star", "cross")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (40, 70, 230),
    "yellow": (240, 220, 30),
    "purple": (150, 50, 190),
    "orange": (255, 140, 0),
    "cyan": (0, 205, 215),
    "white": (250, 250, 250),
}
SIZES = {"small": 0.11, "big": 0.19}  # radius as a fraction of the image side
BACKGROUNDS = ("flat", "gradient", "noise", "texture")
SPLITS = ("train", "val", "test")
_GEN_VERSION = 1  # bump when rendering or captions change: a new cache key


def held_out_pairs() -> set[tuple[str, str]]:
    """The colour–shape pairs reserved for the test split: colour k with shape k mod 6."""
    colours = list(COLOURS)
    return {(colours[k], SHAPES[k % len(SHAPES)]) for k in range(len(colours))}


@dataclass(frozen=True)
class SceneConfig:
    """What the corpus is; its hash names the cache folder."""

    n_train: int = 4000  # training images
    n_val: int = 250  # validation images
    n_test: int = 500  # test images (each with a held-out colour–shape pair)
    image_size: int = 64  # rendered side in pixels
    max_objects: int = 3  # 1..max_objects objects per image
    captions_per_image: int = 5  # reference captions per image
    seed: int = 0  # base seed; image i of split s uses its own RNG from (seed, s, i)

    def key(self) -> str:
        payload = json.dumps({**asdict(self), "v": _GEN_VERSION}, sort_keys=True)
        return hashlib.sha1(payload.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class SceneObject:
    shape: str
    colour: str
    size: str
    x: float  # centre, fraction of the width
    y: float  # centre, fraction of the height

    def phrase(self) -> str:
        return f"{self.size} {self.colour} {self.shape}"


# ----------------------------------------------------------------------------------------------- rendering
def _background(rng: np.random.Generator, kind: str, s: int) -> np.ndarray:
    """(s, s, 3) float background in muted tones so that every object colour stands out."""
    base = rng.uniform(55, 120, size=3)
    if kind == "flat":
        img = np.broadcast_to(base, (s, s, 3)).copy()
    elif kind == "gradient":
        other = rng.uniform(40, 135, size=3)
        t = np.broadcast_to(np.linspace(0.0, 1.0, s)[:, None], (s, s))
        ramp = t if rng.random() < 0.5 else t.T
        img = base * (1 - ramp[..., None]) + other * ramp[..., None]
    elif kind == "noise":
        img = base + rng.normal(0, 14, size=(s, s, 1)) + rng.normal(0, 5, size=(s, s, 3))
    else:  # texture: stripes or checks
        period = int(rng.integers(4, 9))
        yy, xx = np.mgrid[0:s, 0:s]
        pattern = ((xx // period + yy // period) % 2) if rng.random() < 0.5 else ((xx + yy) // period % 2)
        img = base + (pattern[..., None] * 2 - 1) * rng.uniform(8, 18)
    return np.clip(img, 0, 255)


def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "square":
        q = r * 0.85
        return [(cx - q, cy - q), (cx + q, cy - q), (cx + q, cy + q), (cx - q, cy + q)]
    if shape == "triangle":
        return [(cx, cy - r), (cx + r * 0.95, cy + r * 0.8), (cx - r * 0.95, cy + r * 0.8)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r * 0.75, cy), (cx, cy + r), (cx - r * 0.75, cy)]
    if shape == "star":
        pts = []
        for k in range(10):
            a = -np.pi / 2 + k * np.pi / 5
            rr = r if k % 2 == 0 else r * 0.45
            pts.append((cx + rr * np.cos(a), cy + rr * np.sin(a)))
        return pts
    if shape == "cross":
        w = r * 0.36
        return [
            (cx - w, cy - r), (cx + w, cy - r), (cx + w, cy - w), (cx + r, cy - w), (cx + r, cy + w),
            (cx + w, cy + w), (cx + w, cy + r), (cx - w, cy + r), (cx - w, cy + w), (cx - r, cy + w),
            (cx - r, cy - w), (cx - w, cy - w),
        ]  # fmt: skip
    raise ValueError(f"unknown shape {shape!r}")


def render(objects: list[SceneObject], background: np.ndarray, supersample: int = 4) -> np.ndarray:
    """Draw ``objects`` on ``background`` (s, s, 3); returns (s, s, 3) uint8 (antialiased)."""
    s = background.shape[0]
    big = s * supersample
    canvas = Image.fromarray(background.astype(np.uint8)).resize((big, big), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(canvas)
    for o in objects:
        cx, cy, r = o.x * big, o.y * big, SIZES[o.size] * big
        fill = COLOURS[o.colour]
        if o.shape == "circle":
            draw.ellipse([cx - r * 0.9, cy - r * 0.9, cx + r * 0.9, cy + r * 0.9], fill=fill)
        else:
            draw.polygon(_polygon(o.shape, cx, cy, r), fill=fill)
    return np.asarray(canvas.resize((s, s), Image.Resampling.BOX), dtype=np.uint8)


# ------------------------------------------------------------------------------------------------ captions
def _position(o: SceneObject) -> str:
    row = "top" if o.y < 0.38 else ("bottom" if o.y > 0.62 else "")
    col = "left" if o.x < 0.38 else ("right" if o.x > 0.62 else "")
    if row and col:
        return f"in the {row} {col}"
    if row or col:
        return f"at the {row or col}"
    return "in the middle"


def _relation(a: SceneObject, b: SceneObject) -> str:
    """Where ``a`` is with respect to ``b`` along the dominant axis."""
    dx, dy = a.x - b.x, a.y - b.y
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


_COUNT = {1: "one", 2: "two", 3: "three"}


def captions_for(objects: list[SceneObject], background: str, rng: np.random.Generator, k: int) -> list[str]:
    """``k`` distinct captions for a scene from varied templates (objects sorted left to right)."""
    o = sorted(objects, key=lambda t: t.x)
    p = [x.phrase() for x in o]
    n = len(o)
    if n == 1:
        cands = [
            f"a {p[0]}",
            f"a {p[0]} {_position(o[0])}",
            f"there is a {p[0]} {_position(o[0])}",
            f"a {p[0]} on a {background} background",
            f"one {p[0]}",
            f"an image with a {p[0]}",
            f"a {o[0].colour} {o[0].shape} that is {o[0].size}",
        ]
    elif n == 2:
        cands = [
            f"a {p[0]} {_relation(o[0], o[1])} a {p[1]}",
            f"a {p[1]} {_relation(o[1], o[0])} a {p[0]}",
            f"there is a {p[0]} and a {p[1]}",
            f"a {p[0]} and a {p[1]}",
            f"two shapes : a {p[0]} and a {p[1]}",
            f"a {p[0]} and a {p[1]} on a {background} background",
        ]
    else:
        cands = [
            f"a {p[0]} , a {p[1]} and a {p[2]}",
            f"there is a {p[0]} , a {p[1]} and a {p[2]}",
            f"a {p[0]} {_relation(o[0], o[1])} a {p[1]} and a {p[2]}",
            f"three shapes : a {p[0]} , a {p[1]} and a {p[2]}",
            f"a {p[0]} and a {p[1]} {_relation(o[1], o[2])} a {p[2]}",
            f"a {p[0]} , a {p[1]} and a {p[2]} on a {background} background",
        ]
    idx = rng.permutation(len(cands))[:k]
    return [cands[i] for i in sorted(idx)]


# ------------------------------------------------------------------------------------------------- scenes
def _sample_scene(rng: np.random.Generator, cfg: SceneConfig, split: str) -> tuple[list[SceneObject], str]:
    held = held_out_pairs()
    held_list = sorted(held)
    allowed = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in held]
    n = int(rng.integers(1, cfg.max_objects + 1))
    pairs: list[tuple[str, str]] = []
    for i in range(n):
        if split == "test" and i == 0:
            pairs.append(held_list[int(rng.integers(len(held_list)))])
        else:
            pool = allowed if split != "test" else allowed + held_list
            pairs.append(pool[int(rng.integers(len(pool)))])
    rng.shuffle(pairs)  # type: ignore[arg-type]
    objects: list[SceneObject] = []
    for colour, shape in pairs:
        size = "big" if rng.random() < 0.5 else "small"
        r = SIZES[size]
        for _ in range(200):  # rejection sampling: no overlap, clear left/right order
            x, y = rng.uniform(r + 0.02, 1 - r - 0.02, size=2)
            ok = all(
                np.hypot(x - q.x, y - q.y) > r + SIZES[q.size] + 0.04 and abs(x - q.x) > 0.06 for q in objects
            )
            if ok:
                break
        objects.append(SceneObject(shape, colour, size, float(x), float(y)))
    background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    return objects, background


def generate(cfg: SceneConfig) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Render the whole corpus.

    Returns:
        images (N, H, W, 3) uint8 and one record per image:
        ``{"index", "split", "captions", "objects", "background"}``.
    """
    counts = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}
    images: list[np.ndarray] = []
    records: list[dict[str, Any]] = []
    for split_id, split in enumerate(SPLITS):
        for i in range(counts[split]):
            rng = np.random.default_rng([cfg.seed, split_id, i])
            objects, bg = _sample_scene(rng, cfg, split)
            images.append(render(objects, _background(rng, bg, cfg.image_size)))
            records.append(
                {
                    "index": len(records),
                    "split": split,
                    "captions": captions_for(objects, bg, rng, cfg.captions_per_image),
                    "objects": [asdict(o) for o in objects],
                    "background": bg,
                }
            )
    return np.stack(images), records


def load_or_generate(
    cfg: SceneConfig, data_dir: str | os.PathLike[str]
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The corpus from ``<data_dir>/scenes/<cfg.key()>/``, generated and cached on first use.

    Safe when several processes start at once: each writes a private temporary folder and renames it
    into place; the loser of the race uses the winner's (identical) copy.
    """
    root = Path(data_dir) / "scenes"
    final = root / cfg.key()
    if not (final / "captions.json").exists():
        root.mkdir(parents=True, exist_ok=True)
        images, records = generate(cfg)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{cfg.key()}."))
        try:
            np.save(tmp / "images.npy", images)
            (tmp / "captions.json").write_text(json.dumps({"config": asdict(cfg), "images": records}))
            try:
                os.rename(tmp, final)
            except OSError:
                if not (final / "captions.json").exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    images = np.load(final / "images.npy")
    records = json.loads((final / "captions.json").read_text())["images"]
    return images, records


def novel_pair_recall(hyps: list[str], objects: list[list[dict[str, Any]]]) -> float:
    """A direct measure of composition: of all held-out colour–shape objects in the scored images, the
    fraction whose "<colour> <shape>" phrase appears in the image's caption (BLEU/CIDEr give much partial
    credit to a caption that names the colour and a wrong shape).

    Args:
        hyps: one caption per image.
        objects: each image's ``objects`` records (as in ``captions.json``).
    """
    held = held_out_pairs()
    total = hits = 0
    for hyp, objs in zip(hyps, objects, strict=True):
        words = f" {hyp} "
        for o in objs:
            if (o["colour"], o["shape"]) in held:
                total += 1
                hits += f" {o['colour']} {o['shape']} " in words
    return hits / total if total else float("nan")
