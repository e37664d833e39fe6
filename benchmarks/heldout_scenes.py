"""A second held-out scene renderer for the captioner, made by other means than the corpus's and never used
in training: an evaluation set only (``caption_robustness.py`` reports it as ``held_out_2``).

What differs from :mod:`lstm_seq.vision.data.synth` (Pillow polygons, 4× supersampled, on muted backgrounds)
and from the first held-out renderer in ``caption_robustness.py`` (point-in-polygon sampling):

- **Drawing model**: every shape is a signed distance field evaluated at each pixel centre (exact distance to
  the circle or to the polygon's edges, the sign from an even–odd crossing count), turned into coverage by a
  ramp across the edge. Its width gives crisp (1 px) or **soft** edges (2–3 px); a band around the zero level
  gives an **outline** (dark, or a darker shade of the fill); an offset of the field gives rounded corners.
- **Backgrounds that carry the object colours** (any of the 8, blended 35–85 % into a muted base): smooth
  blobs from thresholded gradient noise, stripes (straight or noise-warped), rotated checkers, clutter of
  thin strokes, arcs and dots (never one of the 6 shapes), and a turbulence texture mapped through a
  two-colour palette. The procedural noise is Perlin-style gradient noise written here with numpy.
- **Objects of varying contrast**: each object's shade is drawn in HSV around its colour name, its opacity
  is 0.85–1, and the background's colours may include the object's own.
- Photometric finish: a global contrast change (×0.75–1), sensor grain, and in half of the scenes JPEG
  compression (quality 55–90, via Pillow's encoder).

Same vocabulary as training: the 6 shapes, the 8 colours, the two size classes (radii inside each class),
1–3 objects apart in a clear left-to-right order, only colour–shape pairs that occur in training (the
composition test is ``test/novel_pair_recall``). Each scene is a pure function of (seed, index).

    python -m benchmarks.heldout_scenes --n 32 --out grid.png     # a contact sheet of the first scenes
"""

from __future__ import annotations

import argparse
import colorsys
import io
import math
from typing import Any

import numpy as np
from PIL import Image

from lstm_seq.vision.data.synth import COLOURS, SHAPES, held_out_pairs

# radius as a fraction of the side, inside the corpus's size classes (synth.SIZE_RANGES)
SIZE_RANGES = {"small": (0.095, 0.125), "big": (0.165, 0.21)}
BACKGROUNDS = ("blobs", "stripes", "checkers", "clutter", "texture")
STYLES = ("filled", "outlined", "soft")


# ------------------------------------------------------------------------------------ procedural noise
def gradient_noise(rng: np.random.Generator, s: int, cells: int) -> np.ndarray:
    """(s, s) Perlin-style gradient noise in about [-0.7, 0.7]: random unit gradients on a ``cells``² lattice,
    dot products with the offsets, blended with the quintic fade."""
    ang = rng.uniform(0, 2 * math.pi, size=(cells + 1, cells + 1))
    gx, gy = np.cos(ang), np.sin(ang)
    u = (np.arange(s) + 0.5) / s * cells
    x, y = np.meshgrid(u, u)  # (s, s): x along columns
    i, j = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - i, y - j

    def corner(di: int, dj: int) -> np.ndarray:
        return gx[j + dj, i + di] * (fx - di) + gy[j + dj, i + di] * (fy - dj)

    def fade(t: np.ndarray) -> np.ndarray:
        return t * t * t * (t * (t * 6 - 15) + 10)

    wx, wy = fade(fx), fade(fy)
    top = corner(0, 0) * (1 - wx) + corner(1, 0) * wx
    bottom = corner(0, 1) * (1 - wx) + corner(1, 1) * wx
    return top * (1 - wy) + bottom * wy


def fbm(
    rng: np.random.Generator, s: int, base: int, octaves: int = 3, turbulence: bool = False
) -> np.ndarray:
    """(s, s) fractal sum of gradient noise (octaves at ``base``, 2·base, …, amplitudes halving), in [0, 1]."""
    out = np.zeros((s, s))
    amp = 1.0
    for k in range(octaves):
        n = gradient_noise(rng, s, base * 2**k)
        out += amp * (np.abs(n) if turbulence else n)
        amp /= 2
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-9)


# ---------------------------------------------------------------------------------------- distance fields
def _polygon_points(shape: str, r: float, angle: float, form: float) -> np.ndarray:
    """(P, 2) vertices of ``shape`` (circumradius ~``r``, centred at 0, rotated by ``angle`` radians); ``form``
    in [0, 1] varies its proportions inside what the name allows."""
    if shape == "square":
        q = r * (0.72 + 0.08 * form)
        pts = [(-q, -q), (q, -q), (q, q), (-q, q)]
    elif shape == "triangle":  # isosceles, from a little taller than equilateral to equilateral
        h = 0.55 + 0.1 * form
        pts = [(0.0, -r), (0.9 * r, h * r), (-0.9 * r, h * r)]
    elif shape == "diamond":
        a = 0.58 + 0.12 * form
        pts = [(0.0, -r), (a * r, 0.0), (0.0, r), (-a * r, 0.0)]
    elif shape == "star":
        inner = 0.45 + 0.08 * form
        pts = [
            ((r if k % 2 == 0 else inner * r) * math.cos(-math.pi / 2 + k * math.pi / 5),
             (r if k % 2 == 0 else inner * r) * math.sin(-math.pi / 2 + k * math.pi / 5))
            for k in range(10)
        ]  # fmt: skip
    elif shape == "cross":
        w = r * (0.3 + 0.12 * form)
        pts = [(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w), (-r, w),
               (-r, -w), (-w, -w)]  # fmt: skip
    else:
        raise ValueError(f"unknown shape {shape!r}")
    p = np.asarray(pts, dtype=np.float64)
    c, s = math.cos(angle), math.sin(angle)
    return p @ np.array([[c, s], [-s, c]])


def polygon_sdf(px: np.ndarray, py: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside) from points (px, py) to the closed polygon (P, 2)."""
    d2 = np.full(px.shape, np.inf)
    inside = np.zeros(px.shape, dtype=bool)
    x0, y0 = poly[-1]
    for x1, y1 in poly:
        ex, ey = x1 - x0, y1 - y0
        t = np.clip(((px - x0) * ex + (py - y0) * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        d2 = np.minimum(d2, (px - x0 - t * ex) ** 2 + (py - y0 - t * ey) ** 2)
        crosses = (y1 > py) != (y0 > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            inside ^= crosses & (px < x0 + (py - y0) * ex / ey)
        x0, y0 = x1, y1
    d = np.sqrt(d2)
    return np.where(inside, -d, d)


def shape_sdf(shape: str, cx: float, cy: float, r: float, angle: float, form: float, rounding: float,
              s: int) -> np.ndarray:  # fmt: skip
    """(s, s) signed distance in pixels from each pixel centre to the shape (centre and radius in pixels);
    ``rounding`` (pixels) rounds corners without changing the overall size much."""
    u = np.arange(s) + 0.5
    px, py = np.meshgrid(u, u)
    if shape == "circle":
        return np.hypot(px - cx, py - cy) - 0.88 * r
    poly = _polygon_points(shape, r - rounding, angle, form) + np.array([cx, cy])
    return polygon_sdf(px, py, poly) - rounding


def coverage(sdf: np.ndarray, width: float) -> np.ndarray:
    """(s, s) coverage in [0, 1] from a distance field: a smooth ramp ``width`` pixels wide across the edge."""
    t = np.clip(0.5 - sdf / width, 0.0, 1.0)
    return t * t * (3 - 2 * t)


# ------------------------------------------------------------------------------------------------ colours
def shade(rng: np.random.Generator, colour: str) -> np.ndarray:
    """An RGB shade (3,) in [0, 255] that keeps the colour name, drawn in HSV around the prototype."""
    r, g, b = (v / 255 for v in COLOURS[colour])
    h, sat, val = colorsys.rgb_to_hsv(r, g, b)
    if colour == "white":
        sat, val = rng.uniform(0.0, 0.06), rng.uniform(0.88, 1.0)
    else:
        h = (h + rng.uniform(-0.015, 0.015)) % 1.0
        sat = float(np.clip(sat * rng.uniform(0.8, 1.0), 0, 1))
        val = float(np.clip(val * rng.uniform(0.82, 1.05), 0, 1))
    return np.array(colorsys.hsv_to_rgb(h, sat, val)) * 255


def _tone(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(45, 130, size=3)


def _carried(rng: np.random.Generator, base: np.ndarray, colour: str | None = None) -> np.ndarray:
    """An object colour (random unless given) blended 35–85 % into ``base``: background structure in an object
    hue."""
    name = colour or list(COLOURS)[int(rng.integers(len(COLOURS)))]
    a = rng.uniform(0.35, 0.85)
    return a * shade(rng, name) + (1 - a) * base


# -------------------------------------------------------------------------------------------- backgrounds
def background(rng: np.random.Generator, kind: str, s: int, colours: list[str]) -> np.ndarray:
    """(s, s, 3) float in [0, 255]. ``colours``: the scene's object colours; the structure takes one of them
    half of the time (colour next to the same colour), else any of the 8."""
    base = _tone(rng)

    def pick() -> str | None:
        return colours[int(rng.integers(len(colours)))] if colours and rng.random() < 0.5 else None

    u = np.arange(s) + 0.5
    xx, yy = np.meshgrid(u, u)
    if kind == "blobs":  # soft-edged islands of gradient noise, one or two object hues
        img = np.broadcast_to(base, (s, s, 3)).copy()
        for _ in range(int(rng.integers(1, 3))):
            field = fbm(rng, s, int(rng.integers(2, 4)), octaves=2)
            level = rng.uniform(0.45, 0.65)
            t = np.clip((field - level) / rng.uniform(0.04, 0.15), 0, 1)[..., None]
            img = img * (1 - t) + _carried(rng, base, pick()) * t
        return img
    if kind == "stripes":  # straight or noise-warped bands, hard or sinusoidal
        th, period = rng.uniform(0, math.pi), rng.uniform(5, 14)
        coord = xx * math.cos(th) + yy * math.sin(th)
        if rng.random() < 0.5:
            coord = coord + rng.uniform(3, 8) * (fbm(rng, s, 2, octaves=2) - 0.5) * 2
        wave = np.sin(coord * 2 * math.pi / period)
        t = (wave > rng.uniform(-0.3, 0.3)).astype(float) if rng.random() < 0.6 else 0.5 + 0.5 * wave
        other = _carried(rng, base, pick())
        return base * (1 - t[..., None]) + other * t[..., None]
    if kind == "checkers":  # rotated checkerboard, one or both colours object hues
        th, p = rng.uniform(0, math.pi / 2), rng.uniform(4, 10)
        a = (xx * math.cos(th) + yy * math.sin(th)) / p
        b = (-xx * math.sin(th) + yy * math.cos(th)) / p
        t = ((np.floor(a) + np.floor(b)) % 2)[..., None]
        first = _carried(rng, base, pick()) if rng.random() < 0.4 else base
        return first * (1 - t) + _carried(rng, base, pick()) * t
    if kind == "clutter":  # strokes, arcs and dots in object hues over a noisy tone: never a shape
        img = base + (fbm(rng, s, 4, octaves=3)[..., None] - 0.5) * rng.uniform(20, 50)
        for _ in range(int(rng.integers(6, 16))):
            col = _carried(rng, base, pick())
            kind_ = rng.random()
            if kind_ < 0.5:  # a straight stroke
                x0, y0, x1, y1 = rng.uniform(0, s, size=4)
                poly = np.array([[x0, y0], [x1, y1]])
                ex, ey = poly[1] - poly[0]
                t = np.clip(((xx - x0) * ex + (yy - y0) * ey) / max(ex * ex + ey * ey, 1e-9), 0, 1)
                d = np.hypot(xx - x0 - t * ex, yy - y0 - t * ey) - rng.uniform(0.4, 1.0)
            elif kind_ < 0.8:  # an open arc
                cx, cy, rad = rng.uniform(0, s), rng.uniform(0, s), rng.uniform(4, 14)
                start, span = rng.uniform(0, 2 * math.pi), rng.uniform(0.8, 2.5)
                ang = (np.arctan2(yy - cy, xx - cx) - start) % (2 * math.pi)
                d = np.abs(np.hypot(xx - cx, yy - cy) - rad) - rng.uniform(0.4, 0.9)
                d = np.where(ang <= span, d, np.inf)
            else:  # a dot far smaller than a small object
                cx, cy = rng.uniform(0, s, size=2)
                d = np.hypot(xx - cx, yy - cy) - rng.uniform(0.8, 1.8)
            cov = coverage(d, 1.0)[..., None]
            img = img * (1 - cov) + col * cov
        return img
    # texture: turbulence (absolute gradient noise) through a two-colour palette, one colour an object hue
    t = fbm(rng, s, int(rng.integers(3, 7)), octaves=3, turbulence=True)[..., None]
    return base * (1 - t) + _carried(rng, base, pick()) * t


# ------------------------------------------------------------------------------------------------- scenes
def _layout(rng: np.random.Generator, max_objects: int) -> list[dict[str, Any]]:
    held = held_out_pairs()
    pairs = [(c, sh) for c in COLOURS for sh in SHAPES if (c, sh) not in held]
    n = int(rng.integers(1, max_objects + 1))
    objects: list[dict[str, Any]] = []
    while len(objects) < n:
        colour, shape = pairs[int(rng.integers(len(pairs)))]
        size = "big" if rng.random() < 0.5 else "small"
        r = float(rng.uniform(*SIZE_RANGES[size]))
        for _ in range(300):
            x, y = (float(v) for v in rng.uniform(r + 0.02, 1 - r - 0.02, size=2))
            if all(
                math.hypot(x - o["x"], y - o["y"]) > r + o["r"] + 0.03 and abs(x - o["x"]) > 0.07
                for o in objects
            ):
                objects.append({"shape": shape, "colour": colour, "size": size, "x": x, "y": y, "r": r})
                break
        else:
            break  # no room left: fewer objects
    return objects


def scene(rng: np.random.Generator, s: int = 64, max_objects: int = 3) -> tuple[np.ndarray, list[dict]]:
    """One scene: (s, s, 3) uint8 and its objects ``{"shape", "colour", "size", "x", "y", "style",
    "background"}``."""
    objects = _layout(rng, max_objects)
    kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    img = background(rng, kind, s, [o["colour"] for o in objects])
    for o in objects:
        style = STYLES[int(rng.integers(len(STYLES)))]
        rounding = float(rng.uniform(0, 0.12)) * o["r"] * s if rng.random() < 0.5 else 0.0
        angle = math.radians(float(rng.uniform(-25, 25))) if o["shape"] != "circle" else 0.0
        sdf = shape_sdf(
            o["shape"], o["x"] * s, o["y"] * s, o["r"] * s, angle, float(rng.random()), rounding, s
        )
        fill = shade(rng, o["colour"])
        alpha = rng.uniform(0.85, 1.0)
        cov = coverage(sdf, rng.uniform(2.0, 3.2) if style == "soft" else 1.0)[..., None] * alpha
        img = img * (1 - cov) + fill * cov
        if style == "outlined":  # a band over the edge, dark or a darker shade of the fill
            w = rng.uniform(0.6, 1.2)
            line = rng.uniform(10, 40, size=3) if rng.random() < 0.5 else fill * rng.uniform(0.35, 0.6)
            band = coverage(np.abs(sdf) - w, 1.0)[..., None]
            img = img * (1 - band) + line * band
        o["style"], o["background"] = style, kind
    mean = img.mean(axis=(0, 1))
    img = mean + (img - mean) * rng.uniform(0.75, 1.0)
    img = img + rng.normal(0, rng.uniform(0.5, 4.0), size=img.shape)
    out = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=int(rng.integers(55, 91)))
        out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.uint8)
    return out, [{k: v for k, v in o.items() if k != "r"} for o in objects]


def scene_set(n: int = 200, seed: int = 0, s: int = 64) -> tuple[np.ndarray, list[list[dict]]]:
    """``n`` scenes (n, s, s, 3) uint8 and their objects; a pure function of (n, seed, s)."""
    scenes = [scene(np.random.default_rng([seed, 104729, i]), s) for i in range(n)]
    return np.stack([im for im, _ in scenes]), [objs for _, objs in scenes]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="PNG contact sheet (8 per row, ×3)")
    args = parser.parse_args(argv)
    images, objects = scene_set(args.n, args.seed)
    k = len(images) - len(images) % 8
    rows = [np.concatenate(list(images[i : i + 8]), axis=1) for i in range(0, k, 8)]
    sheet = Image.fromarray(np.concatenate(rows, axis=0))
    sheet.resize((sheet.width * 3, sheet.height * 3), Image.Resampling.NEAREST).save(args.out)
    for i, objs in enumerate(objects[:k]):
        print(i, ", ".join(f"{o['size']} {o['colour']} {o['shape']} ({o['style']})" for o in objs),
              f"on {objs[0]['background'] if objs else '?'}")  # fmt: skip


if __name__ == "__main__":
    main()
