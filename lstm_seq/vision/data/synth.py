"""The embedded caption corpus: deterministic synthetic scenes rendered with Pillow.

Each image holds 1–3 objects (6 shapes, 8 colours, 2 size classes) on one of 7 background families (flat,
gradient, noise, texture, stripes at any angle, soft blobs, low-frequency clouds); each has 5 reference
captions drawn from varied templates that name the objects, their positions and spatial relations ("a small
red circle left of a big blue square"). Objects are listed left to right.

Since generator version 2 (3: narrower proportions, less blur) it draws what a name allows, not one
picture per name: radii continuous inside each size class, rotations up to :data:`ROTATION` (none for
circles, ±25° where more would change the name), proportions that vary inside the name (star core, cross
arm width, diamond aspect, triangle base), a shade per object (hue ±7°, saturation and value ±20 % around
the prototype), anti-aliased edges (4× supersampling), a lighting ramp across the image, sometimes a mild
blur or sensor noise, and in a quarter of multi-object scenes objects that touch or overlap, each keeping
at least :data:`MIN_VISIBLE` of its pixels.

Compositional split: 8 colour–shape pairs (each colour once) never occur in train or validation; every
test image contains at least one of them, so the test score measures composition, not memory.

Generation is a pure function of :class:`SceneConfig` (each image from its own seeded RNG), cached under
``<data_dir>/scenes/<hash>/`` as ``images.npy`` (N, H, W, 3) uint8 + ``captions.json``; a regeneration
gives identical bytes.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from lstm_seq.settings import at_least, check, positive
from lstm_seq.stale_tmp import remove_stale, tmp_name

log = logging.getLogger(__name__)

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
SIZES = {"small": 0.11, "big": 0.19}  # the middle of each size class: radius as a fraction of the image side
SIZE_RANGES = {"small": (0.09, 0.13), "big": (0.16, 0.22)}  # continuous radii inside each class
# the largest rotation (degrees) that keeps each name true: a circle has none; 25° keeps a square a square
# (a 45° square reads as a diamond) and a cross a "+" (45° reads as an "x"); a five-point star repeats at 72°
ROTATION = {"circle": 0.0, "square": 25.0, "triangle": 25.0, "diamond": 25.0, "star": 36.0, "cross": 25.0}
BACKGROUNDS = ("flat", "gradient", "noise", "texture", "stripes", "blobs", "clouds")
SPLITS = ("train", "val", "test")
_GEN_VERSION = 3  # bump when rendering or captions change: a new cache key
MIN_VISIBLE = 0.75  # partial occlusion: every object keeps at least this fraction of its pixels


def held_out_pairs() -> set[tuple[str, str]]:
    """The colour–shape pairs reserved for the test split: colour k with shape k mod 6."""
    colours = list(COLOURS)
    return {(colours[k], SHAPES[k % len(SHAPES)]) for k in range(len(colours))}


@dataclass(frozen=True)
class SceneConfig:
    """What the corpus is; its hash names the cache folder."""

    n_train: int = at_least(0, 4000)  # training images
    n_val: int = at_least(0, 250)  # validation images
    n_test: int = at_least(0, 500)  # test images (each with a held-out colour–shape pair)
    image_size: int = positive(64)  # rendered side in pixels
    max_objects: int = positive(3)  # 1..max_objects objects per image
    captions_per_image: int = positive(5)  # reference captions per image
    seed: int = 0  # base seed; image i of split s uses its own RNG from (seed, s, i)

    def __post_init__(self) -> None:
        check(self, "data.")

    def key(self) -> str:
        payload = json.dumps({**asdict(self), "v": _GEN_VERSION}, sort_keys=True)
        return hashlib.sha1(payload.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class SceneObject:
    """One drawn object. ``size`` is the class the captions name; ``r`` the radius drawn inside it."""

    shape: str
    colour: str
    size: str
    x: float  # centre, fraction of the width
    y: float  # centre, fraction of the height
    r: float = 0.0  # radius, fraction of the side (0: the class middle, SIZES)
    angle: float = 0.0  # rotation in degrees (|angle| ≤ ROTATION[shape])
    rgb: tuple[int, int, int] | None = None  # the shade drawn (None: the colour's prototype)
    form: float = 0.5  # in [0, 1]: the shape's proportions (star core, cross arm width, diamond aspect, …)

    def phrase(self) -> str:
        return f"{self.size} {self.colour} {self.shape}"

    @property
    def radius(self) -> float:
        return self.r or SIZES[self.size]


# ----------------------------------------------------------------------------------------------- rendering
def _muted(rng: np.random.Generator, lo: float = 55, hi: float = 120) -> np.ndarray:
    return rng.uniform(lo, hi, size=3)


def _smooth_field(rng: np.random.Generator, s: int, cells: int) -> np.ndarray:
    """(s, s) in [0, 1]: a ``cells``×``cells`` random grid, bilinearly upsampled (low-frequency)."""
    coarse = Image.fromarray((rng.uniform(0, 255, size=(cells, cells))).astype(np.uint8))
    return np.asarray(coarse.resize((s, s), Image.Resampling.BILINEAR), dtype=np.float64) / 255.0


def _background(rng: np.random.Generator, kind: str, s: int) -> np.ndarray:
    """(s, s, 3) float background in muted tones so that every object colour stands out."""
    base = _muted(rng)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float64)
    if kind == "flat":
        img = np.broadcast_to(base, (s, s, 3)).copy()
    elif kind == "gradient":
        other = rng.uniform(40, 135, size=3)
        t = np.broadcast_to(np.linspace(0.0, 1.0, s)[:, None], (s, s))
        ramp = t if rng.random() < 0.5 else t.T
        img = base * (1 - ramp[..., None]) + other * ramp[..., None]
    elif kind == "noise":
        img = base + rng.normal(0, 14, size=(s, s, 1)) + rng.normal(0, 5, size=(s, s, 3))
    elif kind == "texture":  # stripes or checks
        period = int(rng.integers(4, 9))
        pattern = ((xx // period + yy // period) % 2) if rng.random() < 0.5 else ((xx + yy) // period % 2)
        img = base + (pattern[..., None] * 2 - 1) * rng.uniform(8, 18)
    elif kind == "stripes":  # two muted tones in bands at any angle, hard or soft edged
        other = _muted(rng, 45, 130)
        th, period = rng.uniform(0, np.pi), rng.uniform(4, 13)
        phase = (xx * np.cos(th) + yy * np.sin(th)) * 2 * np.pi / period
        t = np.sin(phase) > rng.uniform(-0.4, 0.4) if rng.random() < 0.6 else 0.5 + 0.5 * np.sin(phase)
        t = np.asarray(t, dtype=np.float64)
        img = base * (1 - t[..., None]) + other * t[..., None]
    elif kind == "blobs":  # soft Gaussian blobs of another tone
        other = _muted(rng, 45, 130)
        t = np.zeros((s, s))
        for _ in range(int(rng.integers(2, 7))):
            mx, my, sd = rng.uniform(0, s), rng.uniform(0, s), rng.uniform(s / 10, s / 3)
            t += rng.uniform(0.4, 1.0) * np.exp(-((xx - mx) ** 2 + (yy - my) ** 2) / (2 * sd**2))
        t = np.clip(t / max(float(t.max()), 1e-6), 0, 1)
        img = base * (1 - t[..., None]) + other * t[..., None]
    else:  # clouds: low-frequency noise between two tones, plus a finer octave
        other = _muted(rng, 45, 130)
        t = 0.7 * _smooth_field(rng, s, int(rng.integers(3, 6))) + 0.3 * _smooth_field(rng, s, 9)
        img = base * (1 - t[..., None]) + other * t[..., None]
    return np.clip(img, 0, 255)


def _polygon(
    shape: str, cx: float, cy: float, r: float, angle: float = 0.0, form: float = 0.5
) -> list[tuple[float, float]]:
    """The outline of ``shape`` around (cx, cy), radius ``r``, rotated by ``angle`` degrees; ``form`` in
    [0, 1] varies its proportions inside what the name allows."""
    if shape == "square":
        q = r * (0.78 + 0.1 * form)
        pts = [(-q, -q), (q, -q), (q, q), (-q, q)]
    elif shape == "triangle":  # from wide to equilateral
        w, base = 0.9 + 0.06 * form, 0.55 + 0.2 * (1 - form)
        pts = [(0.0, -r), (r * w, r * base), (-r * w, r * base)]
    elif shape == "diamond":
        a = 0.6 + 0.15 * form
        pts = [(0.0, -r), (r * a, 0.0), (0.0, r), (-r * a, 0.0)]
    elif shape == "star":
        inner = 0.42 + 0.1 * form
        pts = []
        for k in range(10):
            a = -np.pi / 2 + k * np.pi / 5
            rr = r if k % 2 == 0 else r * inner
            pts.append((rr * np.cos(a), rr * np.sin(a)))
    elif shape == "cross":
        w = r * (0.32 + 0.1 * form)
        pts = [
            (-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w), (-r, w),
            (-r, -w), (-w, -w),
        ]  # fmt: skip
    else:
        raise ValueError(f"unknown shape {shape!r}")
    c, s_ = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    return [(cx + x * c - y * s_, cy + x * s_ + y * c) for x, y in pts]


def _draw(draw: ImageDraw.ImageDraw, o: SceneObject, big: int, fill: Any) -> None:
    cx, cy, r = o.x * big, o.y * big, o.radius * big
    if o.shape == "circle":
        draw.ellipse([cx - r * 0.9, cy - r * 0.9, cx + r * 0.9, cy + r * 0.9], fill=fill)
    else:
        draw.polygon(_polygon(o.shape, cx, cy, r, o.angle, o.form), fill=fill)


def render(objects: list[SceneObject], background: np.ndarray, supersample: int = 4) -> np.ndarray:
    """Draw ``objects`` (in order, later ones in front) on ``background`` (s, s, 3); returns (s, s, 3) uint8,
    anti-aliased by drawing at ``supersample``× and box-filtering down."""
    s = background.shape[0]
    big = s * supersample
    canvas = Image.fromarray(background.astype(np.uint8)).resize((big, big), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(canvas)
    for o in objects:
        _draw(draw, o, big, tuple(o.rgb) if o.rgb is not None else COLOURS[o.colour])
    return np.asarray(canvas.resize((s, s), Image.Resampling.BOX), dtype=np.uint8)


def visible_fractions(objects: list[SceneObject], s: int, supersample: int = 2) -> list[float]:
    """For each object, the fraction of its pixels that no later object covers."""
    big = s * supersample
    masks = []
    for o in objects:
        m = Image.new("1", (big, big), 0)
        _draw(ImageDraw.Draw(m), o, big, 1)
        masks.append(np.asarray(m, dtype=bool))
    out = []
    for i, m in enumerate(masks):
        later = np.zeros_like(m)
        for n in masks[i + 1 :]:
            later |= n
        out.append(float((m & ~later).sum() / max(1, m.sum())))
    return out


def _shade(rng: np.random.Generator, colour: str) -> tuple[int, int, int]:
    """A shade of ``colour`` that still carries its name: hue within ±7°, saturation 75–100 %, value
    80–105 % of the prototype (white: a near-white grey)."""
    r, g, b = (v / 255 for v in COLOURS[colour])
    h, sat, val = colorsys.rgb_to_hsv(r, g, b)
    if colour == "white":
        sat, val = rng.uniform(0.0, 0.07), rng.uniform(0.86, 1.0)
    else:
        h = (h + rng.uniform(-0.02, 0.02)) % 1.0
        sat = float(np.clip(sat * rng.uniform(0.75, 1.0), 0, 1))
        val = float(np.clip(val * rng.uniform(0.8, 1.05), 0, 1))
    rgb = colorsys.hsv_to_rgb(h, sat, val)
    return (round(rgb[0] * 255), round(rgb[1] * 255), round(rgb[2] * 255))


def colour_name(rgb: tuple[float, float, float] | np.ndarray) -> str:
    """The colour name an RGB value (0–255) carries: ``"white"`` for a light unsaturated value, else the
    colour whose prototype hue is nearest (used by tests to check that shades and jitter keep names)."""
    r, g, b = (float(v) / 255 for v in rgb)
    h, sat, val = colorsys.rgb_to_hsv(r, g, b)
    if sat < 0.25:
        return "white" if val > 0.6 else "grey"
    best, dist = "", 2.0
    for name, proto in COLOURS.items():
        if name == "white":
            continue
        ph = colorsys.rgb_to_hsv(*(v / 255 for v in proto))[0]
        d = min(abs(h - ph), 1 - abs(h - ph))
        if d < dist:
            best, dist = name, d
    return best


def _finish(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Photometric variety over the whole image: a lighting ramp (×0.85–1.15 across the image in any
    direction), sometimes a mild blur, sometimes sensor noise. (s, s, 3) uint8 → uint8."""
    s = img.shape[0]
    out = img.astype(np.float64)
    if rng.random() < 0.6:
        th, amp = rng.uniform(0, 2 * np.pi), rng.uniform(0.0, 0.15)
        yy, xx = np.mgrid[0:s, 0:s] / max(1, s - 1) - 0.5
        out *= (1 + 2 * amp * (xx * np.cos(th) + yy * np.sin(th)))[..., None]
    if rng.random() < 0.15:
        pil = Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))
        out = np.asarray(pil.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 0.6)))), dtype=np.float64)
    if rng.random() < 0.5:
        out = out + rng.normal(0, rng.uniform(1, 5), size=out.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


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
def _place(rng: np.random.Generator, pairs: list[tuple[str, str]], overlap: bool) -> list[SceneObject]:
    """Positions, sizes, rotations, shades and proportions for ``pairs``. Without ``overlap`` objects are
    apart; with it they may touch and overlap a little (the caller checks :data:`MIN_VISIBLE`). Always a
    clear left-to-right order."""
    objects: list[SceneObject] = []
    for colour, shape in pairs:
        size = "big" if rng.random() < 0.5 else "small"
        r = float(rng.uniform(*SIZE_RANGES[size]))
        for _ in range(200):  # rejection sampling: clear left/right order, apart or barely overlapping
            x, y = rng.uniform(r + 0.02, 1 - r - 0.02, size=2)
            ok = all(
                np.hypot(x - q.x, y - q.y) > ((r + q.radius) * 0.8 if overlap else r + q.radius + 0.04)
                and abs(x - q.x) > 0.06
                for q in objects
            )
            if ok:
                break
        angle = float(rng.uniform(-ROTATION[shape], ROTATION[shape]))
        rgb = _shade(rng, colour)
        objects.append(
            SceneObject(shape, colour, size, float(x), float(y), r, angle, rgb, float(rng.random()))
        )
    return objects


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
    overlap = n > 1 and rng.random() < 0.25
    objects = _place(rng, pairs, overlap)
    if overlap and min(visible_fractions(objects, cfg.image_size)) < MIN_VISIBLE:
        objects = _place(rng, pairs, False)  # an identity would be hidden: place them apart instead
    while len(objects) > 1 and min(visible_fractions(objects, cfg.image_size)) < MIN_VISIBLE:
        # no room for every object apart (rejection sampling gave up): drop one, never a held-out pair
        droppable = [i for i, o in enumerate(objects) if (o.colour, o.shape) not in held]
        if not droppable:
            break
        objects.pop(droppable[-1])
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
            images.append(_finish(render(objects, _background(rng, bg, cfg.image_size)), rng))
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
    into place; the loser of the race uses the winner's (identical) copy. A temporary folder left by a killed
    process is removed by the next call; a cache that does not read back (a truncated ``images.npy`` or
    ``captions.json``) is reported by name and generated again.
    """
    root = Path(data_dir) / "scenes"
    final = root / cfg.key()
    remove_stale(root, ".*.tmp*")
    _remove_unmarked_temps(root)
    if (final / "captions.json").exists():
        try:
            return _read_scenes(final, cfg)
        except ValueError as exc:
            log.warning("%s; generating the scenes again", exc)
            aside = root / tmp_name(f".{cfg.key()}.bad")
            try:
                os.replace(final, aside)
            except OSError:
                pass
            shutil.rmtree(aside, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    images, records = generate(cfg)
    tmp = root / tmp_name(f".{cfg.key()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
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
    return _read_scenes(final, cfg)


LEGACY_TMP_AGE_S = 3600.0  # generating the scenes takes seconds


def _remove_unmarked_temps(root: Path) -> None:
    """Hidden folders ``.<key>.<random>`` of earlier versions (no writer in the name) older than an hour."""
    if not root.is_dir():
        return
    for d in root.glob(".*"):
        if d.is_dir() and ".tmp" not in d.name and time.time() - d.stat().st_mtime > LEGACY_TMP_AGE_S:
            shutil.rmtree(d, ignore_errors=True)
            log.info("removed %s, left by a generation that did not finish", d)


def _read_scenes(folder: Path, cfg: SceneConfig) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The cached images and records; ``ValueError`` naming the file that does not read back whole."""
    path = folder / "images.npy"
    try:
        images = np.load(path)
        path = folder / "captions.json"
        records = json.loads(path.read_text(encoding="utf-8"))["images"]
    except (OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: the cached scene corpus is damaged ({type(exc).__name__}: {exc})") from None
    n = cfg.n_train + cfg.n_val + cfg.n_test
    if images.ndim != 4 or len(images) != n or len(records) != n:
        raise ValueError(f"{folder}: the cached scene corpus is damaged ({len(images)} images, {len(records)} "
                         f"records, {n} expected)")  # fmt: skip
    return images, records
