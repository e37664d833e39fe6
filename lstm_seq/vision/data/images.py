"""Robust image loading and the encoder's input transform.

:func:`load_image` returns an RGB ``PIL.Image`` or raises :class:`ImageLoadError` whose message names the
file and the reason. It handles grayscale, RGBA/LA (composited on white), palette (with transparency),
CMYK, 16-bit and float images, EXIF orientation, 1×1 images, zero-byte, truncated and corrupt files,
non-images with image extensions, and decompression-bomb-sized images (refused before decoding).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
DEFAULT_MAX_PIXELS = 50_000_000  # refuse anything larger (a 7k×7k photo is 49 MP)


class ImageLoadError(ValueError):
    """An image file cannot be used; ``str(err)`` names the file and the reason."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") else max(float(arr.max()), 1.0)
        arr = np.clip(arr / hi * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def load_image(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open ``path`` as an upright RGB image.

    Raises:
        ImageLoadError: empty, unreadable, not an image, truncated/corrupt, or over ``max_pixels``.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise ImageLoadError(p, f"cannot read file ({exc.strerror or exc})") from exc
    if size == 0:
        raise ImageLoadError(p, "empty file (0 bytes)")
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageLoadError(
                        p, f"image too large: {w}x{h} = {w * h} pixels > max_pixels={max_pixels}"
                    )
                if w < 1 or h < 1:
                    raise ImageLoadError(p, f"image has no pixels ({w}x{h})")
                img.load()
                img = ImageOps.exif_transpose(img) or img
                return _to_rgb(img)
    except ImageLoadError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageLoadError(p, "not a recognised image format") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(p, f"decompression bomb refused: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageLoadError(p, f"corrupt or truncated image: {exc}") from exc


@dataclass(frozen=True)
class ImageTransform:
    """PIL RGB image → normalised float tensor (3, S, S) (squash resize, no crop: positions stay true).
    Stored in the checkpoint so that inference uses exactly the training transform."""

    size: int = 64  # side S in pixels
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)

    def __call__(self, img: Image.Image) -> torch.Tensor:
        return self.normalize(self.pixels(img))

    def pixels(self, img: Image.Image) -> torch.Tensor:
        """PIL RGB image → resized uint8 tensor (3, S, S), before normalisation."""
        if img.size != (self.size, self.size):
            img = img.resize((self.size, self.size), Image.Resampling.BILINEAR)
        arr = np.asarray(img, dtype=np.uint8)
        return torch.from_numpy(arr.copy()).permute(2, 0, 1)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (..., 3, S, S) → float normalised."""
        mean = torch.tensor(self.mean, dtype=torch.float32).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(3, 1, 1)
        return (x.float() / 255.0 - mean) / std

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageTransform:
        return cls(size=int(d["size"]), mean=tuple(d["mean"]), std=tuple(d["std"]))  # type: ignore[arg-type]


def list_images(root: str | os.PathLike[str]) -> list[Path]:
    """Every file under ``root`` (recursively, sorted) whose extension looks like an image; hidden files and
    files in hidden folders (``.thumbnails/``, ``._photo.jpg``) are left out."""
    r = Path(root)
    if not r.is_dir():
        raise FileNotFoundError(f"image_dir {r} is not a directory")
    return sorted(
        p
        for p in r.rglob("*")
        if p.is_file()
        and p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(r).parts)
    )
