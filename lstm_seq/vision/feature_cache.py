"""Feature cache for a frozen encoder: the grid features of every image of a split, computed once and stored
under ``<data_dir>/features/<key>.npy`` (N, L, C) float16 with ``<key>.json`` (ids and per-image errors).

The key hashes the encoder's weights and configuration, the image transform and the split's image list, so a
changed encoder or dataset never reads stale features. The file is written to a temporary name and renamed
(atomic), then opened read-only with ``mmap_mode="r"``: safe to share with several loader workers, and
reused by later epochs and later runs. A cache that does not read back whole is reported by name and computed
again; the temporary file of a run killed while writing is removed by the next build.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from lstm_seq.atomic import write_atomic
from lstm_seq.stale_tmp import remove_stale
from lstm_seq.vision.data.datasets import CaptionDataset
from lstm_seq.vision.encoder import CNNEncoder

log = logging.getLogger(__name__)


def cache_key(encoder: CNNEncoder, dataset: CaptionDataset) -> str:
    """Hash of the encoder weights + transform + image list (+ image array bytes for in-memory corpora)."""
    h = hashlib.sha1()
    for name, t in sorted(encoder.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    h.update(repr((encoder.name, encoder.stride, encoder.pool)).encode())
    if encoder.hue_pool:  # same weights, another function (keys of caches without it are unchanged)
        h.update(b"hue_pool")
    h.update(json.dumps(dataset.transform.to_dict(), sort_keys=True).encode())
    h.update("\n".join(it.image for it in dataset.items).encode())
    if dataset.images is not None:
        rows = sorted({int(it.image[1:]) for it in dataset.items if it.image.startswith("#")})
        h.update(np.ascontiguousarray(dataset.images[rows]).tobytes())
    return h.hexdigest()[:16]


@torch.no_grad()
def build_feature_cache(
    encoder: CNNEncoder, dataset: CaptionDataset, data_dir: str | os.PathLike[str], batch_size: int = 64
) -> tuple[np.ndarray, list[str | None]]:
    """Grid features (N, L, C) for every item of ``dataset`` (memory-mapped, read-only) and, per item, the
    load error or None. Computed only when the cache file for this key is absent."""
    if not encoder.frozen:
        raise ValueError("the feature cache needs a frozen encoder (encoder.frozen=true)")
    root = Path(data_dir) / "features"
    key = cache_key(encoder, dataset)
    npy, meta = root / f"{key}.npy", root / f"{key}.json"
    remove_stale(root, ".*.tmp*")  # half-written caches of killed runs (as large as the cache)
    if npy.exists() and meta.exists():
        try:
            return _read_cache(npy, meta, len(dataset))
        except ValueError as exc:
            log.warning("%s; computing the features again", exc)
            npy.unlink(missing_ok=True)
            meta.unlink(missing_ok=True)
    if not (npy.exists() and meta.exists()):
        root.mkdir(parents=True, exist_ok=True)
        encoder.eval()
        feats: np.ndarray | None = None
        errors: list[str | None] = [None] * len(dataset)
        loader = DataLoader(range(len(dataset)), batch_size=batch_size, collate_fn=list)
        for idx in loader:
            good, imgs = [], []
            for i in idx:
                try:
                    imgs.append(dataset.load(i))
                    good.append(i)
                except Exception as exc:  # recorded, never fatal
                    errors[i] = str(exc)
            if not imgs:
                continue
            grid, _ = encoder(torch.stack(imgs).to(next(encoder.parameters()).device))
            if feats is None:
                feats = np.zeros((len(dataset), *grid.shape[1:]), dtype=np.float16)
            feats[good] = grid.float().cpu().numpy().astype(np.float16)
        if feats is None:
            raise ValueError("no image of the split could be loaded for the feature cache")
        write_atomic(npy, lambda fh: np.save(fh, feats))
        info = {"ids": [it.image_id for it in dataset.items], "errors": errors}
        write_atomic(meta, lambda fh: fh.write(json.dumps(info).encode("utf-8")))
    return _read_cache(npy, meta, len(dataset))


def _read_cache(npy: Path, meta: Path, n: int) -> tuple[np.ndarray, list[str | None]]:
    """The memory-mapped features (n, L, C) and the per-item errors; ``ValueError`` naming the file that
    does not read back whole (e.g. truncated by a full disk or a copy cut short)."""
    path = meta
    try:
        info: dict[str, Any] = json.loads(meta.read_text(encoding="utf-8"))
        errors = info["errors"]
        path = npy
        feats = np.load(npy, mmap_mode="r")
    except (OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: the feature cache is damaged ({type(exc).__name__}: {exc})") from None
    if feats.ndim != 3 or len(feats) != n or len(errors) != n:
        raise ValueError(f"{npy}: the feature cache is damaged ({feats.shape} for {n} images)")
    return feats, errors
