"""Missing and unreadable caption images: a batch whose every image fails is skipped (no crash), missing files
are dropped at load and counted in metrics.json, and a split none of whose images exists is an error naming
its folder before any training."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from lstm_seq.vision import recipe
from lstm_seq.vision.data.corpus import load_corpus
from lstm_seq.vision.data.datasets import CaptionDataset, collate_captions
from lstm_seq.vision.module import CaptionModule

NAMES = [f"img{i}.jpg" for i in range(4)]


def _coco(root: Path, present: list[str]) -> dict[str, dict[str, str]]:
    (root / "imgs").mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(present):
        Image.new("RGB", (20, 16), (40 * i, 80, 120)).save(root / "imgs" / n)
    ann = {
        "images": [{"id": i, "file_name": n} for i, n in enumerate(NAMES)],
        "annotations": [{"image_id": i, "caption": f"a photo of thing {i}"} for i in range(len(NAMES))],
    }
    (root / "c.json").write_text(json.dumps(ann))
    return {
        "annotations": {s: str(root / "c.json") for s in ("train", "test")},
        "image_dirs": {s: str(root / "imgs") for s in ("train", "test")},
    }


def _model(corpus: object) -> CaptionModule:
    data = {"min_freq": 1, "image_size": 32, "mean": (0.5,) * 3, "std": (0.25,) * 3}
    enc = {"name": "mobilenet_v3_small", "output_stride": 16}
    dec = {"variant": "attention", "embed_dim": 8, "hidden_size": 16, "attention_dim": 8}
    return recipe.build_model(corpus, data, enc, dec, {"beam_size": 1, "max_len": 4})  # type: ignore[arg-type]


def test_batches_whose_every_image_fails_are_skipped_not_fatal(tmp_path: Path) -> None:
    corpus = load_corpus("coco", tmp_path, **_coco(tmp_path, NAMES))
    (tmp_path / "imgs" / "img0.jpg").write_bytes(b"not a jpeg")  # exists, fails at load
    (tmp_path / "imgs" / "img2.jpg").write_bytes(b"")
    model = _model(corpus)
    ds = CaptionDataset(corpus.split("train"), model.vocab, model.transform)
    loader = DataLoader(ds, batch_size=1, collate_fn=functools.partial(collate_captions, pad_id=0))
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    before = [p.detach().clone() for p in model.decoder.parameters()]
    # batches 0 and 2 are empty: before the fix "stack expects a non-empty TensorList"
    trainer.fit(model, loader)
    assert trainer.state.finished and trainer.current_epoch == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.decoder.parameters(), strict=True))


def test_missing_files_are_dropped_and_counted_in_metrics(tmp_path: Path) -> None:
    corpus = load_corpus("coco", tmp_path, **_coco(tmp_path, NAMES[1:]))
    assert [it.image_id for it in corpus.split("train")] == ["1", "2", "3"]
    assert corpus.report() == {"data/test/missing_images": 1, "data/train/missing_images": 1}
    data = {"batch_size": 2, "num_workers": 0, "train_captions": 1, "max_len": 6}
    model = _model(corpus)
    metrics, _ = recipe.evaluate(model, recipe.datamodule(model, corpus, data), tmp_path, smoke=True)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["data/test/missing_images"] == metrics["data/test/missing_images"] == 1


def test_an_image_folder_without_the_images_is_an_error_naming_it(tmp_path: Path) -> None:
    opts = _coco(tmp_path, [])
    with pytest.raises(ValueError, match=rf"{tmp_path / 'imgs'}: none of the 4 images .*data.image_dirs"):
        load_corpus("coco", tmp_path, **opts)
