"""Use a trained captioner from Python: :class:`Captioner`.

::

    from lstm_seq.vision import Captioner

    cap = Captioner.from_checkpoint("outputs/…/checkpoints/best.ckpt")
    for c in cap.caption(["photo.jpg", "album/", pil_image, tensor_chw], beam_size=5, nbest=3, attention=True):
        print(c.path, c.text if c.ok else c.error, c.nbest)

Items are image files, folders (every image under them, sorted; hidden files and folders left out),
``PIL.Image`` objects, tensors — one image (3, H, W) or a batch (B, 3, H, W) — or numpy arrays as PIL and imageio
give them — one image (H, W, 3) or (H, W), or a batch (B, H, W, 3), RGB — uint8 in [0, 255] or float in [0, 1],
resized and normalised by the checkpoint's own transform, exactly as a file is. An item that cannot be used gets
a result with ``error`` set; the call never fails for one bad item. Images are loaded by ``num_workers`` loader processes and captioned
``batch_size`` at a time with the checkpoint's decoding settings (beam size, length and repeat penalties).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.functional import to_pil_image

from lstm_seq.vision.data.images import DEFAULT_MAX_PIXELS, ImageLoadError, list_images, load_image
from lstm_seq.vision.module import CaptionModule


@dataclass
class Caption:
    """The result for one image.

    Attributes:
        text: the caption ("" when ``error`` is set).
        path: the file, or ``"<image N>"`` / ``"<image N.k>"`` for the N-th in-memory item (k-th of a batch).
        score: the search's score of ``text`` (beam: length-normalised log-probability; greedy: summed).
        attention: with ``attention=True`` and an attention decoder: (T, L) weights over the L encoder cells per
            emitted token: T = words + 1 (``<end>`` included), or words for a caption cut at ``max_len``, for :func:`~lstm_seq.vision.gallery.attention_overlay`.
        nbest: with ``nbest > 1`` (beam search): up to that many ``(text, score)``, best first.
        error: why the item could not be captioned (None: it was).
    """

    text: str = ""
    path: str = ""
    score: float | None = None
    attention: np.ndarray | None = None
    nbest: list[tuple[str, float]] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class _Items(Dataset):
    """(label, source) pairs → ``{"label", "image"}`` or ``{"label", "error"}`` (in a loader worker)."""

    def __init__(self, entries: list[tuple[str, Any]], module: CaptionModule, max_pixels: int) -> None:
        self.entries, self.transform, self.max_pixels = entries, module.transform, max_pixels

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> dict[str, Any]:
        label, source = self.entries[i]
        try:
            if isinstance(source, Exception):
                raise source
            if isinstance(source, Path):
                img = load_image(source, self.max_pixels)
            elif isinstance(source, Image.Image):
                img = source.convert("RGB")
            else:
                img = _tensor_image(source)
            return {"label": label, "image": self.transform(img)}
        except ImageLoadError as exc:
            return {"label": label, "error": exc.reason if label in exc.reason else f"{label}: {exc.reason}"}
        except (ValueError, TypeError, OSError) as exc:
            return {"label": label, "error": f"{label}: {exc}"}


def _tensor_image(x: torch.Tensor) -> Image.Image:
    """A (3, H, W) uint8 or [0, 1] float tensor as a PIL RGB image."""
    if x.dim() != 3 or x.shape[0] not in (1, 3) or x.shape[1] < 1 or x.shape[2] < 1:
        raise ValueError(f"an image tensor must be (3, H, W) or (1, H, W), got shape {tuple(x.shape)}")
    if x.is_floating_point():
        if not torch.isfinite(x).all():
            raise ValueError("the image tensor holds NaN or infinite values")
        if x.min() < 0 or x.max() > 1:
            raise ValueError("a float image tensor must lie in [0, 1] (uint8 tensors: [0, 255])")
    elif x.dtype != torch.uint8:
        raise TypeError(f"an image tensor must be uint8 or floating point, got {x.dtype}")
    return to_pil_image(x.detach().cpu()).convert("RGB")


def _array_image(x: np.ndarray) -> Image.Image | Exception:
    """A numpy RGB image as PIL and imageio give it — (H, W, 3), (H, W, 4) or (H, W, 1) channels-last, or
    (H, W) grey — uint8 in [0, 255] or float in [0, 1], as an RGB image; otherwise the error to report."""
    if x.ndim == 3 and x.shape[-1] in (1, 3, 4):
        x = x[..., :3] if x.shape[-1] != 1 else x[..., 0]
    if not (x.ndim == 2 or (x.ndim == 3 and x.shape[-1] == 3)) or 0 in x.shape:
        return ValueError(
            f"an image array must be (H, W, 3), (H, W, 4), (H, W, 1) or (H, W), got shape {x.shape}"
        )
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            return ValueError("a float image array must lie in [0, 1] (uint8 arrays: [0, 255])")
        x = np.round(x * 255)
    elif x.dtype != np.uint8:
        return TypeError(f"an image array must be uint8 or floating point, got {x.dtype}")
    return Image.fromarray(np.ascontiguousarray(x, dtype=np.uint8)).convert("RGB")


def _collate(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return batch


class Captioner:
    """A trained captioner, ready to caption.

    Args:
        module: the :class:`CaptionModule`.
        device: where it runs.
        max_pixels: larger image files are refused (decompression bombs).
    """

    def __init__(
        self, module: CaptionModule, device: str | torch.device = "cpu", max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> None:
        self.module = module.eval().to(device)
        self.device = torch.device(device)
        self.max_pixels = max_pixels

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Captioner:
        """Load ``path`` (``weights_only=True``; a foreign or broken file raises
        :class:`~lstm_seq.training.checkpoint_io.CheckpointError` naming it)."""
        return cls(CaptionModule.load(path), device=device)

    def export(self, out_dir: str | os.PathLike[str], **options: Any) -> Any:
        """ONNX files of the encoder and the decoder step with their metadata:
        :func:`lstm_seq.vision.export.export_captioner` (``options``: ``opset``)."""
        from lstm_seq.vision.export import export_captioner

        return export_captioner(self.module, out_dir, **options)

    def _entries(self, items: Any) -> list[tuple[str, Any]]:
        if isinstance(items, (str, os.PathLike, Image.Image, torch.Tensor, np.ndarray)):
            items = [items]  # one item (a numpy array of images is one item too, not a list of rows)
        elif not isinstance(items, Iterable):
            raise TypeError(
                "caption() takes a path, a folder, a PIL image, an image array or tensor, or a list of them, "
                f"got {type(items).__name__}"
            )
        out: list[tuple[str, Any]] = []
        for n, item in enumerate(items):
            if isinstance(item, (str, os.PathLike)):
                p = Path(item)
                if p.is_dir():
                    out += [(str(f), f) for f in list_images(p)]
                else:
                    out.append((str(p), p))
            elif isinstance(item, Image.Image):
                out.append((f"<image {n}>", item))
            elif isinstance(item, torch.Tensor) and item.dim() == 4:
                out += [(f"<image {n}.{k}>", item[k]) for k in range(item.shape[0])]
            elif isinstance(item, torch.Tensor):
                out.append((f"<image {n}>", item))
            elif isinstance(item, np.ndarray) and item.ndim == 4:
                out += [(f"<image {n}.{k}>", _array_image(item[k])) for k in range(item.shape[0])]
            elif isinstance(item, np.ndarray):
                out.append((f"<image {n}>", _array_image(item)))
            else:
                out.append(
                    (
                        f"<item {n}>",
                        TypeError(f"not a path, folder, PIL image, array or tensor: {type(item).__name__}"),
                    )
                )
        return out

    def caption(
        self,
        items: Any,
        beam_size: int | None = None,
        batch_size: int = 32,
        attention: bool = False,
        nbest: int = 1,
        num_workers: int = 0,
    ) -> list[Caption]:
        """Caption every item (see the module docstring); one :class:`Caption` per image, in input order.

        Args:
            beam_size: None: the checkpoint's; 1: greedy.
            nbest: > 1 returns up to that many hypotheses (needs beam search: ``beam_size`` ≥ ``nbest``).
        """
        return list(self.iter_caption(items, beam_size, batch_size, attention, nbest, num_workers))

    def iter_caption(
        self,
        items: Any,
        beam_size: int | None = None,
        batch_size: int = 32,
        attention: bool = False,
        nbest: int = 1,
        num_workers: int = 0,
    ) -> Iterator[Caption]:
        """:meth:`caption` as a generator, batch by batch."""
        if batch_size < 1 or nbest < 1:
            raise ValueError(f"batch_size and nbest must be ≥ 1, got {batch_size} and {nbest}")
        k = self.module.settings["beam_size"] if beam_size is None else beam_size
        if k < 1:
            raise ValueError(f"beam_size must be ≥ 1 (1: greedy), got {k}")
        if nbest > 1 and k < nbest:
            raise ValueError(f"nbest={nbest} needs beam search with beam_size ≥ nbest (beam_size is {k})")
        loader = DataLoader(
            _Items(self._entries(items), self.module, self.max_pixels),
            batch_size=batch_size, num_workers=num_workers, collate_fn=_collate,
        )  # fmt: skip
        for batch in loader:
            yield from self._caption_batch(batch, k, attention, nbest)

    @torch.no_grad()
    def _caption_batch(
        self, batch: list[dict[str, Any]], k: int, attention: bool, nbest: int
    ) -> Iterable[Caption]:
        good = [j for j, b in enumerate(batch) if "image" in b]
        results = [Caption(path=b["label"], error=b.get("error")) for b in batch]
        if good:
            images = torch.stack([batch[j]["image"] for j in good]).to(self.device)
            dec = self.module.generate(images, beam_size=k)
            texts = self.module.vocab.decode_batch(dec.tokens.cpu())
            for i, j in enumerate(good):
                c = results[j]
                c.text, c.score = texts[i], float(dec.scores[i])
                if attention and dec.alphas is not None:
                    c.attention = dec.alphas[i, : int(dec.lengths[i]) + 1].float().cpu().numpy()
                if nbest > 1 and dec.pool_tokens is not None and dec.pool_scores is not None:
                    ok = torch.isfinite(dec.pool_scores[i])
                    pool = self.module.vocab.decode_batch(dec.pool_tokens[i][ok].cpu())
                    c.nbest = list(zip(pool, dec.pool_scores[i][ok].tolist(), strict=True))[:nbest]
                    c.nbest = c.nbest or [(c.text, c.score)]
        return results
