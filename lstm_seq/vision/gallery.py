"""``captions.html``: a self-contained gallery (thumbnails embedded as data URIs) with each image, its caption
and, for the attention decoder, one attention map per word. Every string taken from file names, captions or
error messages is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lstm_seq.vision.data.images import ImageLoadError, load_image


@dataclass
class GalleryEntry:
    """One gallery row: a caption (with optional per-word attention (T, L)) or an error."""

    path: str
    caption: str | None = None
    error: str | None = None
    attention: np.ndarray | None = None


def _data_uri(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def attention_overlay(thumb: Image.Image, alpha: np.ndarray) -> Image.Image:
    """Blend an attention vector (L,) over a square grid onto ``thumb`` (brighter = more attention)."""
    g = round(math.sqrt(alpha.shape[0]))
    if g * g != alpha.shape[0]:
        raise ValueError(f"attention over {alpha.shape[0]} cells is not a square grid")
    a = alpha.reshape(g, g).astype(np.float32)
    a = (a - a.min()) / max(float(a.max() - a.min()), 1e-8)
    heat = Image.fromarray((a * 255).astype(np.uint8), mode="L").resize(thumb.size, Image.Resampling.BILINEAR)
    dark = Image.blend(thumb, Image.new("RGB", thumb.size, (0, 0, 0)), 0.7)
    return Image.composite(thumb, dark, heat)


def write_gallery(
    entries: Sequence[GalleryEntry],
    out_path: str | os.PathLike[str],
    thumbnail: int = 160,
    max_pixels: int = 50_000_000,
) -> Path:
    """Write the gallery HTML to ``out_path`` and return it."""
    rows: list[str] = []
    for e in entries:
        name = html.escape(e.path)
        if e.error is not None:
            rows.append(
                f'<div class="item err"><div class="path">{name}</div><div class="error">error: {html.escape(e.error)}</div></div>'
            )
            continue
        try:
            thumb = load_image(e.path, max_pixels)
            thumb.thumbnail((thumbnail, thumbnail))
            thumb = thumb.resize((thumbnail, thumbnail)) if e.attention is not None else thumb
        except ImageLoadError as exc:
            rows.append(
                f'<div class="item err"><div class="path">{name}</div><div class="error">{html.escape(exc.reason)}</div></div>'
            )
            continue
        parts = [
            f'<div class="item"><img src="{_data_uri(thumb)}" alt="{name}"><div class="path">{name}</div>'
        ]
        parts.append(f'<div class="caption">{html.escape(e.caption or "")}</div>')
        if e.attention is not None:
            words = [*(e.caption or "").split(), "<end>"]
            maps = []
            small = thumb.resize((thumbnail // 2, thumbnail // 2))
            for w, alpha in zip(words, e.attention, strict=False):
                maps.append(
                    f'<figure><img src="{_data_uri(attention_overlay(small, alpha))}"><figcaption>{html.escape(w)}</figcaption></figure>'
                )
            parts.append(f'<div class="att">{"".join(maps)}</div>')
        parts.append("</div>")
        rows.append("".join(parts))
    page = (
        '<!doctype html>\n<html><head><meta charset="utf-8"><title>captions</title><style>'
        "body{font-family:sans-serif}.item{border-bottom:1px solid #ccc;padding:8px}.path{color:#666;font-size:12px}"
        ".caption{font-size:18px;margin:4px 0}.error{color:#b00}.att figure{display:inline-block;margin:2px;text-align:center}"
        ".att figcaption{font-size:11px}</style></head><body>\n"
        f"<h1>{len(entries)} images</h1>\n" + "\n".join(rows) + "\n</body></html>\n"
    )
    out = Path(out_path)
    out.write_text(page, encoding="utf-8")
    return out
