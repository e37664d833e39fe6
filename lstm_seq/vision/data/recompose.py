"""Figure–ground augmentation for the scene corpus: a training scene's objects re-drawn on a new background
whose structure carries object colours, so that colour alone never tells an object from the ground.

A scene's record holds everything that drew it (shape, size, centre, radius, rotation, shade, proportions:
:class:`~lstm_seq.vision.data.synth.SceneObject`), so the objects are re-rendered exactly, not cut out. Each
recomposition draws:

- **a background with object-coloured structure** (:data:`FAMILIES`), where "object colour" is one of the 8
  prototypes blended 30–90 % into a muted tone, half of the time the colour of one of the scene's own
  objects: soft blobs, stripes at any angle, checks, low-frequency clouds, each optionally overlaid with
  **clutter** (thin strokes, open arcs, dots smaller than any object: never one of the 6 shapes);
- **per-object contrast**: a fresh shade inside the colour name (:func:`~lstm_seq.vision.data.synth._shade`)
  and an opacity of 0.85–1 over the background;
- **outline style**: filled, filled with a dark or darker-shade outline, or soft-edged (coverage blurred by
  0.6–1.4 px);
- the corpus's photometric finish (lighting ramp, sometimes blur or sensor noise).

The captions keep their objects; only the background word changes (each family renders under the corpus's
name that fits it, :data:`FAMILIES`). Everything is drawn with Pillow, 4× supersampled, as the corpus is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from lstm_seq.vision.data.synth import COLOURS, SceneObject, _finish, _muted, _polygon, _shade, _smooth_field

# background family → the corpus background name its captions use
FAMILIES = {"blobs": "blobs", "stripes": "stripes", "checks": "texture", "clouds": "clouds"}
SUPERSAMPLE = 4


def _object_colour(rng: np.random.Generator, base: np.ndarray, own: list[str]) -> np.ndarray:
    """(3,) an object colour blended 30–90 % into ``base``; half of the time one of ``own`` (the scene's)."""
    names = list(COLOURS)
    name = own[int(rng.integers(len(own)))] if own and rng.random() < 0.5 else names[int(rng.integers(8))]
    a = rng.uniform(0.3, 0.9)
    return a * np.asarray(_shade(rng, name), dtype=np.float64) + (1 - a) * base


def coloured_background(rng: np.random.Generator, family: str, s: int, own: list[str]) -> np.ndarray:
    """(s, s, 3) float in [0, 255]: a muted tone with structure in an object colour."""
    base = _muted(rng, 45, 135)
    other = _object_colour(rng, base, own)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float64)
    if family == "blobs":
        t = np.zeros((s, s))
        for _ in range(int(rng.integers(1, 5))):
            mx, my, sd = rng.uniform(0, s), rng.uniform(0, s), rng.uniform(s / 12, s / 4)
            t += rng.uniform(0.5, 1.0) * np.exp(-((xx - mx) ** 2 + (yy - my) ** 2) / (2 * sd**2))
        t = np.clip(t / max(float(t.max()), 1e-6) * rng.uniform(1.0, 2.0), 0, 1)
    elif family == "stripes":
        th, period = rng.uniform(0, np.pi), rng.uniform(4, 14)
        wave = np.sin((xx * np.cos(th) + yy * np.sin(th)) * 2 * np.pi / period)
        t = (wave > rng.uniform(-0.4, 0.4)).astype(np.float64) if rng.random() < 0.6 else 0.5 + 0.5 * wave
    elif family == "checks":
        p = int(rng.integers(4, 11))
        t = ((xx // p + yy // p) % 2).astype(np.float64)
    else:  # clouds
        t = 0.7 * _smooth_field(rng, s, int(rng.integers(2, 6))) + 0.3 * _smooth_field(rng, s, 8)
        t = np.clip((t - 0.5) * rng.uniform(1.5, 3.0) + 0.5, 0, 1)
    return base * (1 - t[..., None]) + other * t[..., None]


def _clutter(rng: np.random.Generator, img: np.ndarray, own: list[str]) -> np.ndarray:
    """Draw 4–14 thin strokes, open arcs and dots in object colours on ``img`` (s, s, 3) float."""
    s = img.shape[0]
    big = s * SUPERSAMPLE
    canvas = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).resize((big, big), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(canvas)
    base = img.mean(axis=(0, 1))
    for _ in range(int(rng.integers(4, 15))):
        col = tuple(int(v) for v in np.clip(_object_colour(rng, base, own), 0, 255))
        kind = rng.random()
        if kind < 0.45:  # a straight stroke, 1–2 px wide
            x0, y0, x1, y1 = (float(v) for v in rng.uniform(0, big, size=4))
            draw.line([(x0, y0), (x1, y1)], fill=col, width=int(rng.integers(3, 8)))
        elif kind < 0.8:  # an open arc (at most 150°: never a ring)
            cx, cy, r = rng.uniform(0, big), rng.uniform(0, big), rng.uniform(4, 14) * SUPERSAMPLE
            start = float(rng.uniform(0, 360))
            draw.arc([cx - r, cy - r, cx + r, cy + r], start, start + float(rng.uniform(40, 150)), fill=col,
                     width=int(rng.integers(3, 7)))  # fmt: skip
        else:  # a dot: radius ≤ 1.8 px, far below a small object's 0.09 × side
            cx, cy = rng.uniform(0, big, size=2)
            r = rng.uniform(0.8, 1.8) * SUPERSAMPLE
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=col)
    return np.asarray(canvas.resize((s, s), Image.Resampling.BOX), dtype=np.float64)


def _mask(o: SceneObject, s: int, outline: int = 0) -> np.ndarray:
    """(s, s) coverage in [0, 1] of ``o`` (its outline band ``outline`` supersampled pixels wide when > 0)."""
    big = s * SUPERSAMPLE
    m = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(m)
    cx, cy, r = o.x * big, o.y * big, o.radius * big
    if o.shape == "circle":
        box = [cx - r * 0.9, cy - r * 0.9, cx + r * 0.9, cy + r * 0.9]
        draw.ellipse(box, fill=None if outline else 255, outline=255 if outline else None, width=outline or 1)
    else:
        pts = _polygon(o.shape, cx, cy, r, o.angle, o.form)
        if outline:
            draw.line([*pts, pts[0], pts[1]], fill=255, width=outline, joint="curve")
        else:
            draw.polygon(pts, fill=255)
    return np.asarray(m.resize((s, s), Image.Resampling.BOX), dtype=np.float64) / 255.0


def recompose(objects: list[SceneObject], s: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Re-draw ``objects`` (in order, later in front) on a new object-coloured background.

    Returns:
        the image (s, s, 3) uint8 and the corpus background name for its captions.
    """
    own = [o.colour for o in objects]
    family = list(FAMILIES)[int(rng.integers(len(FAMILIES)))]
    img = coloured_background(rng, family, s, own)
    if rng.random() < 0.5:
        img = _clutter(rng, img, own)
    for o in objects:
        fill = np.asarray(_shade(rng, o.colour), dtype=np.float64)
        cov = _mask(o, s)
        style = rng.random()
        if style < 0.25:  # soft edges
            pil = Image.fromarray(np.rint(cov * 255).astype(np.uint8))
            blurred = pil.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.6, 1.4))))
            cov = np.asarray(blurred, dtype=np.float64) / 255.0
        cov = cov * rng.uniform(0.85, 1.0)
        img = img * (1 - cov[..., None]) + fill * cov[..., None]
        if 0.25 <= style < 0.5:  # an outline: dark, or a darker shade of the fill
            line = rng.uniform(10, 45, size=3) if rng.random() < 0.5 else fill * rng.uniform(0.35, 0.6)
            band = _mask(o, s, outline=int(rng.integers(4, 8)))
            img = img * (1 - band[..., None]) + line * band[..., None]
    return _finish(np.clip(np.rint(img), 0, 255).astype(np.uint8), rng), FAMILIES[family]


def scene_objects(records: list[dict[str, Any]]) -> list[SceneObject]:
    """``captions.json`` object records → :class:`SceneObject` (rgb back to a tuple)."""
    return [SceneObject(**{**o, "rgb": tuple(o["rgb"]) if o.get("rgb") else None}) for o in records]

