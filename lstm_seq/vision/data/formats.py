"""Caption file formats: COCO captions JSON, Flickr8k/30k token files, Karpathy split JSON, and the embedded
scene corpus's records, each read into :class:`CaptionItem` records (an image path or in-memory row, its reference
captions, its split). Every reader's error names the file and, where there is one, the line.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lstm_seq.text_files import read_utf8


@dataclass
class CaptionItem:
    """One image and its reference captions.

    image: a file path, or ``"#<row>"`` for an image held in an in-memory array (the scene corpus).
    """

    image: str
    captions: list[str]
    split: str
    image_id: str
    extra: dict[str, Any] = field(default_factory=dict)


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{what}: {path} does not exist")
    return path


def _utf8(path: Path) -> str:
    """The file as UTF-8 text; other bytes raise :class:`ValueError` naming the file and line."""
    return read_utf8(path, ValueError)


class _NotText(TypeError):
    """A caption that is not a string (null, a list, a number): the message says where in the file."""


def _caption(value: object, where: str) -> str:
    if not isinstance(value, str):  # str() would train "none" or "['a', 'list']" as a caption
        raise _NotText(f"{where} must be a string, got {type(value).__name__} {value!r:.60}")
    return value.strip()


def read_coco(
    annotations: str | os.PathLike[str], image_dir: str | os.PathLike[str], split: str
) -> list[CaptionItem]:
    """COCO captions JSON (``annotations/captions_train2017.json`` style: ``images`` with ``id`` and
    ``file_name``, ``annotations`` with ``image_id`` and ``caption``). Images without captions are skipped."""
    ann_path = _need(Path(annotations), "coco annotations")
    try:
        data = json.loads(_utf8(ann_path))
        files = {int(im["id"]): im["file_name"] for im in data["images"]}
        caps: dict[int, list[str]] = defaultdict(list)
        for k, a in enumerate(data["annotations"]):
            caps[int(a["image_id"])].append(_caption(a["caption"], f"annotations[{k}].caption"))
        root = Path(image_dir)
        return [
            CaptionItem(str(root / files[i]), caps[i], split, str(i)) for i in sorted(files) if caps.get(i)
        ]
    except _NotText as exc:
        raise ValueError(f"{ann_path}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, RecursionError) as exc:
        # ValueError covers bad JSON and non-UTF-8 bytes; the others a JSON of the wrong shape
        raise ValueError(f"{ann_path}: not a COCO captions file ({type(exc).__name__}: {exc})") from exc


def read_flickr(
    token_file: str | os.PathLike[str],
    image_dir: str | os.PathLike[str],
    split_files: dict[str, str | os.PathLike[str]] | None = None,
) -> list[CaptionItem]:
    """Flickr8k/30k ``*.token.txt``: lines ``<file>#<n>\\t<caption>``. ``split_files`` maps a split name to a
    file listing one image file name per line (Flickr8k's ``Flickr_8k.trainImages.txt``); without it every
    image is in split ``"all"``."""
    tok = _need(Path(token_file), "flickr token file")
    caps: dict[str, list[str]] = defaultdict(list)
    for n, line in enumerate(_utf8(tok).splitlines(), 1):
        if not line.strip():
            continue
        if "\t" not in line or "#" not in line.split("\t", 1)[0]:
            raise ValueError(f"{tok}:{n}: expected '<image>#<k>\\t<caption>', got {line[:80]!r}")
        key, cap = line.split("\t", 1)
        caps[key.rsplit("#", 1)[0]].append(cap.strip())
    split_of: dict[str, str] = {}
    for split, f in (split_files or {}).items():
        for name in _utf8(_need(Path(f), f"flickr split file for {split}")).split():
            split_of[name] = split
    root = Path(image_dir)
    out = []
    for name in sorted(caps):
        split = split_of.get(name, "all" if not split_files else "")
        if split:
            out.append(CaptionItem(str(root / name), caps[name], split, name))
    return out


def read_karpathy(json_file: str | os.PathLike[str], image_dir: str | os.PathLike[str]) -> list[CaptionItem]:
    """Karpathy split JSON (``dataset_coco.json`` / ``dataset_flickr8k.json``): ``images`` with ``filename``,
    optional ``filepath``, ``split`` (train/val/test/restval) and ``sentences`` [{``raw``}]. ``restval``
    counts as train."""
    path = _need(Path(json_file), "karpathy split file")
    try:
        data = json.loads(_utf8(path))
        root = Path(image_dir)
        out = []
        for im in data["images"]:
            split = "train" if im["split"] == "restval" else im["split"]
            rel = Path(im.get("filepath", "")) / im["filename"]
            where = f"images[{len(out)}].sentences"
            caps = [_caption(s["raw"], f"{where}[{j}].raw") for j, s in enumerate(im["sentences"])]
            iid = str(im.get("cocoid", im.get("imgid", im["filename"])))
            out.append(CaptionItem(str(root / rel), caps, split, iid))
    except _NotText as exc:
        raise ValueError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, RecursionError) as exc:
        # ValueError covers bad JSON and non-UTF-8 bytes; the others a JSON of the wrong shape
        raise ValueError(f"{path}: not a Karpathy split file ({type(exc).__name__}: {exc})") from exc
    return out


def scene_items(records: list[dict[str, Any]]) -> list[CaptionItem]:
    """Records of :func:`lstm_seq.vision.data.synth.load_or_generate` → items backed by the image array."""
    return [
        CaptionItem(
            f"#{r['index']}",
            list(r["captions"]),
            r["split"],
            f"scene-{r['index']}",
            {"objects": r["objects"], "background": r["background"]},
        )
        for r in records
    ]
