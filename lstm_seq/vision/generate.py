"""Caption every image under a folder (``pipelines.caption.generate``): ``captions.jsonl`` (one ``{"path", "caption"}`` or
``{"path", "error"}`` per file) and the ``captions.html`` gallery. Bad files are reported, never fatal. The
captions are :class:`~lstm_seq.vision.captioner.Captioner`'s.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstm_seq.outputs import write_jsonl_atomic
from lstm_seq.settings import at_least, check, positive
from lstm_seq.vision.captioner import Captioner
from lstm_seq.vision.data.images import DEFAULT_MAX_PIXELS, list_images
from lstm_seq.vision.gallery import GalleryEntry, write_gallery
from lstm_seq.vision.module import CaptionModule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerateConfig:
    """``pipelines.caption.generate`` (``generate`` in conf/caption_generate.yaml)."""

    batch_size: int = positive(32)
    num_workers: int = at_least(0, 2)
    max_pixels: int = positive(DEFAULT_MAX_PIXELS)  # larger files are refused (decompression bombs)
    thumbnail: int = positive(160)  # gallery thumbnail side in pixels

    def __post_init__(self) -> None:
        check(self, "generate.")


def caption_folder(
    model: CaptionModule,
    image_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    batch_size: int = GenerateConfig.batch_size,
    num_workers: int = GenerateConfig.num_workers,
    beam_size: int | None = None,
    max_pixels: int = GenerateConfig.max_pixels,
    thumbnail: int = GenerateConfig.thumbnail,
) -> dict[str, Any]:
    """Caption all images under ``image_dir`` (recursively) with ``model`` (on its device).

    Returns:
        ``{"generate/images": n, "generate/captioned": k, "generate/errors": n - k}``.
    """
    paths = list_images(image_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    captioner = Captioner(model, model.device, max_pixels)
    results = captioner.caption(paths, beam_size, batch_size, attention=True, num_workers=num_workers)
    for r in results:
        if not r.ok:
            log.warning("cannot caption %s", r.error)
    entries = [
        GalleryEntry(r.path, caption=r.text, attention=r.attention)
        if r.ok
        else GalleryEntry(r.path, error=r.error)
        for r in results
    ]
    write_jsonl_atomic(
        out / "captions.jsonl",
        (
            {"path": e.path, "caption": e.caption} if e.error is None else {"path": e.path, "error": e.error}
            for e in entries
        ),
    )
    write_gallery(entries, out / "captions.html", thumbnail=thumbnail, max_pixels=max_pixels)
    n_err = sum(e.error is not None for e in entries)
    return {
        "generate/images": len(entries),
        "generate/captioned": len(entries) - n_err,
        "generate/errors": n_err,
    }
