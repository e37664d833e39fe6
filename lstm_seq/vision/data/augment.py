"""Training-time image augmentation for the captioner whose every transform keeps the captions true.

- **Geometry** (scenes only: it needs each object's position to rewrite the captions): a horizontal flip
  mirrors every object (left ↔ right, so the left-to-right order of the objects reverses), a zoom about the
  centre by ``1 ± scale`` and a shift by up to ``translate`` of the side, clamped so that every object stays
  inside the frame. The captions are then re-rendered from the moved objects with the corpus's own templates
  (:func:`lstm_seq.vision.data.synth.captions_for`): "left of", "above", "in the top left" and the object order
  are those of the augmented image by construction. Zoom and shift are uniform and positive, so "above" and
  "left of" never change; ``scale`` ≤ 0.1 keeps every radius inside its size class.
- **Figure–ground recomposition** (scenes only, probability ``recompose``): the objects re-drawn on a new
  background whose structure carries object colours, with per-object contrast and outline style
  (:mod:`lstm_seq.vision.data.recompose`); the captions keep their objects and take the new background's name.
- **Colour** (any data): brightness, contrast and saturation factors in ``1 ± x`` and a hue rotation of up to
  ``hue`` of the circle, small enough that every colour keeps its name (tested on the corpus's extreme
  shades with :func:`lstm_seq.vision.data.synth.colour_name`).

Every draw comes from ``numpy.random.default_rng([seed, 1])`` where ``seed`` is the sample's
:class:`~lstm_seq.training.sampler.SeededIndex` seed, a function of (run seed, epoch, index): the same with
or without workers and after an exact resume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lstm_seq.vision.data.recompose import recompose, scene_objects
from lstm_seq.vision.data.synth import SceneObject, captions_for


@dataclass
class ImageAugment:
    """Training augmentation settings (``data.augment``); zero turns a transform off."""

    hflip: float = 0.5  # probability of a horizontal flip (captions rewritten: left ↔ right, order reversed)
    scale: float = 0.08  # zoom about the centre by a factor in [1 - scale, 1 + scale] (≤ 0.1)
    translate: float = 0.08  # shift by up to this fraction of the side (clamped: objects stay in the frame)
    brightness: float = 0.15  # multiply by a factor in [1 - b, 1 + b]
    contrast: float = 0.15  # scale the deviations from the image mean by [1 - c, 1 + c]
    saturation: float = 0.15  # scale the deviations from each pixel's grey by [1 - s, 1 + s]
    hue: float = 0.01  # rotate hues by up to this fraction of the circle (0.01 = 3.6°)
    recompose: float = 0.0  # probability of re-drawing a scene's objects on an object-coloured background

    def __post_init__(self) -> None:
        if not 0.0 <= self.hflip <= 1.0:
            raise ValueError(f"augment.hflip={self.hflip}: a probability in [0, 1]")
        if not 0.0 <= self.scale <= 0.1:
            raise ValueError(f"augment.scale={self.scale}: in [0, 0.1] (more would change size classes)")
        if not 0.0 <= self.translate <= 0.25:
            raise ValueError(f"augment.translate={self.translate}: in [0, 0.25]")
        for name in ("brightness", "contrast", "saturation"):
            if not 0.0 <= getattr(self, name) <= 0.3:
                raise ValueError(
                    f"augment.{name}={getattr(self, name)}: in [0, 0.3] (colours keep their names)"
                )
        if not 0.0 <= self.recompose <= 1.0:
            raise ValueError(f"augment.recompose={self.recompose}: a probability in [0, 1]")
        if not 0.0 <= self.hue <= 0.02:
            raise ValueError(f"augment.hue={self.hue}: in [0, 0.02] (colours keep their names)")

    @property
    def geometric(self) -> bool:
        return self.hflip > 0 or self.scale > 0 or self.translate > 0

    @property
    def photometric(self) -> bool:
        return any(v > 0 for v in (self.brightness, self.contrast, self.saturation, self.hue))


@dataclass(frozen=True)
class Geometry:
    """One draw of the geometric transform, in image fractions: x' = 0.5 + s·(x̃ - 0.5) + tx where x̃ is x
    mirrored when ``flip``; the same for y without the mirror."""

    flip: bool = False
    s: float = 1.0
    tx: float = 0.0
    ty: float = 0.0

    def move(self, o: SceneObject) -> SceneObject:
        x = 1.0 - o.x if self.flip else o.x
        return replace(
            o,
            x=0.5 + self.s * (x - 0.5) + self.tx,
            y=0.5 + self.s * (o.y - 0.5) + self.ty,
            r=o.radius * self.s,
            angle=-o.angle if self.flip else o.angle,
        )


def draw_geometry(rng: np.random.Generator, aug: ImageAugment, objects: list[SceneObject]) -> Geometry:
    """A flip, zoom and shift for a scene, the shift clamped so every object stays inside the frame."""
    flip = bool(rng.random() < aug.hflip)
    s = float(rng.uniform(1 - aug.scale, 1 + aug.scale))
    shift = []
    for axis in ("x", "y"):
        t = float(rng.uniform(-aug.translate, aug.translate))
        lo, hi = -1.0, 1.0  # feasible shifts: every object's extent stays in [0, 1]
        for o in objects:
            c = getattr(o, axis)
            c = 1.0 - c if flip and axis == "x" else c
            c = 0.5 + s * (c - 0.5)
            r = o.radius * s
            lo, hi = max(lo, r - c), min(hi, 1.0 - r - c)
        shift.append(min(max(t, lo), hi) if lo <= hi else 0.0)
    return Geometry(flip, s, shift[0], shift[1])


def warp(img: torch.Tensor, g: Geometry) -> torch.Tensor:
    """Apply ``g`` to an image (3, S, S) float; edges are extended (the background continues)."""
    if g == Geometry():
        return img
    # affine_grid maps output coordinates (in [-1, 1]) to input ones: the inverse of x' = s·x̃ + 2·t
    sx = -1.0 / g.s if g.flip else 1.0 / g.s
    theta = torch.tensor(
        [[sx, 0.0, -2 * g.tx * sx], [0.0, 1.0 / g.s, -2 * g.ty / g.s]], dtype=img.dtype
    )  # (2, 3)
    grid = F.affine_grid(theta[None], [1, *img.shape], align_corners=False)
    return F.grid_sample(img[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0]


def jitter_colours(img: torch.Tensor, rng: np.random.Generator, aug: ImageAugment) -> torch.Tensor:
    """Brightness, contrast, saturation and hue jitter of an image (3, S, S) with values in [0, 255]."""
    b = float(rng.uniform(1 - aug.brightness, 1 + aug.brightness))
    c = float(rng.uniform(1 - aug.contrast, 1 + aug.contrast))
    s = float(rng.uniform(1 - aug.saturation, 1 + aug.saturation))
    h = float(rng.uniform(-aug.hue, aug.hue))
    return jitter_with(img, b, c, s, h)


def jitter_with(img: torch.Tensor, b: float, c: float, s: float, h: float) -> torch.Tensor:
    """The colour jitter with given factors (``h`` in fractions of the hue circle); (3, ...) in [0, 255]."""
    out = img * b
    out = out.mean() + (out - out.mean()) * c
    grey = (0.299 * out[0] + 0.587 * out[1] + 0.114 * out[2])[None]
    out = grey + (out - grey) * s
    if h:  # rotate about the grey axis (Rodrigues): hue shifts by h·360°, brightness stays
        a = 2 * math.pi * h
        cos, sin, k = math.cos(a), math.sin(a), 1 / math.sqrt(3)
        r = torch.tensor(
            [
                [cos + (1 - cos) / 3, (1 - cos) / 3 - k * sin, (1 - cos) / 3 + k * sin],
                [(1 - cos) / 3 + k * sin, cos + (1 - cos) / 3, (1 - cos) / 3 - k * sin],
                [(1 - cos) / 3 - k * sin, (1 - cos) / 3 + k * sin, cos + (1 - cos) / 3],
            ],
            dtype=out.dtype,
        )
        out = torch.einsum("ij,j...->i...", r, out)
    return out.clamp(0, 255)


def augment_scene(
    img: torch.Tensor,
    objects: list[dict[str, Any]] | None,
    background: str | None,
    n_captions: int,
    aug: ImageAugment,
    seed: int,
) -> tuple[torch.Tensor, list[str] | None]:
    """Augment one training image (3, S, S) with values in [0, 255].

    Args:
        objects, background: the scene's records (``captions.json``); None for other data (no geometry).
        n_captions: how many captions to re-render when the geometry moved the objects.
        seed: the sample's seed (a function of run seed, epoch and index).

    Returns:
        the image (3, S, S) float in [0, 255], and new captions that describe it (None: keep the old ones).
    """
    rng = np.random.default_rng([seed & ((1 << 63) - 1), 1])
    caps = None
    recomposed = False
    if aug.recompose > 0 and objects is not None and background is not None:
        rrng = np.random.default_rng([seed & ((1 << 63) - 1), 2])  # its own stream: the others stay as they were
        if rrng.random() < aug.recompose:
            pixels, background = recompose(scene_objects(objects), img.shape[-1], rrng)
            img, recomposed = torch.from_numpy(pixels).permute(2, 0, 1).float(), True
    if aug.geometric and objects is not None and background is not None:
        objs = scene_objects(objects)
        g = draw_geometry(rng, aug, objs)
        img = warp(img, g)
        caps = captions_for([g.move(o) for o in objs], background, rng, n_captions)
    elif recomposed and objects is not None and background is not None:
        caps = captions_for(scene_objects(objects), background, rng, n_captions)
    if aug.photometric:
        img = jitter_colours(img, rng, aug)
    return img, caps
