"""Dataset readers (COCO, Flickr, Karpathy) on tiny fake datasets, the caption dataset and its collate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lstm_seq.vision.data.corpus import load_corpus
from lstm_seq.vision.data.datasets import CaptionDataset, collate_captions
from lstm_seq.vision.data.formats import read_coco, read_flickr, read_karpathy
from lstm_seq.vision.data.images import ImageTransform
from lstm_seq.vision.decoding.evaluate import caption_split
from lstm_seq.vision.vocab import Vocabulary


def _images(root: Path, names: list[str]) -> None:
    for i, n in enumerate(names):
        (root / n).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20 + i, 16), (40 * i % 255, 80, 120)).save(root / n)


def _coco(tmp_path: Path) -> tuple[Path, Path]:
    img_dir = tmp_path / "val2017"
    _images(img_dir, ["000001.jpg", "000002.jpg", "000003.jpg"])
    ann = {
        "images": [
            {"id": 1, "file_name": "000001.jpg"},
            {"id": 2, "file_name": "000002.jpg"},
            {"id": 3, "file_name": "000003.jpg"},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "caption": "A dog runs."},
            {"id": 11, "image_id": 1, "caption": "a brown dog running"},
            {"id": 12, "image_id": 2, "caption": "Two cats sleep"},
        ],
    }
    path = tmp_path / "annotations" / "captions_val2017.json"
    path.parent.mkdir()
    path.write_text(json.dumps(ann))
    return path, img_dir


def test_read_coco(tmp_path: Path) -> None:
    ann, img_dir = _coco(tmp_path)
    items = read_coco(ann, img_dir, "val")
    assert [it.image_id for it in items] == ["1", "2"]  # image 3 has no captions
    assert items[0].captions == ["A dog runs.", "a brown dog running"]
    assert Path(items[0].image) == img_dir / "000001.jpg" and items[0].split == "val"
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": []}')
    with pytest.raises(ValueError, match="not a COCO captions file"):
        read_coco(bad, img_dir, "val")


def test_read_flickr_with_and_without_split_files(tmp_path: Path) -> None:
    _images(tmp_path / "imgs", ["a.jpg", "b.jpg", "c.jpg"])
    tok = tmp_path / "Flickr8k.token.txt"
    tok.write_text("a.jpg#0\tA child plays .\na.jpg#1\tkid playing\nb.jpg#0\tA dog\nc.jpg#0\tA tree\n\n")
    (tmp_path / "train.txt").write_text("a.jpg\nc.jpg\n")
    (tmp_path / "test.txt").write_text("b.jpg\n")
    items = read_flickr(
        tok, tmp_path / "imgs", {"train": tmp_path / "train.txt", "test": tmp_path / "test.txt"}
    )
    assert {(it.image_id, it.split) for it in items} == {
        ("a.jpg", "train"),
        ("b.jpg", "test"),
        ("c.jpg", "train"),
    }
    assert next(it for it in items if it.image_id == "a.jpg").captions == ["A child plays .", "kid playing"]
    assert {it.split for it in read_flickr(tok, tmp_path / "imgs")} == {"all"}
    tok.write_text("a.jpg a caption without a tab\n")
    with pytest.raises(ValueError, match=r"Flickr8k.token.txt:1"):
        read_flickr(tok, tmp_path / "imgs")


def test_read_karpathy(tmp_path: Path) -> None:
    _images(tmp_path, ["val2014/x.jpg", "train2014/y.jpg"])
    data = {
        "images": [
            {
                "filepath": "val2014",
                "filename": "x.jpg",
                "split": "test",
                "cocoid": 7,
                "sentences": [{"raw": "A cat."}, {"raw": "cat"}],
            },
            {
                "filepath": "train2014",
                "filename": "y.jpg",
                "split": "restval",
                "cocoid": 8,
                "sentences": [{"raw": "A dog"}],
            },
        ]
    }
    js = tmp_path / "dataset_coco.json"
    js.write_text(json.dumps(data))
    items = read_karpathy(js, tmp_path)
    assert [(it.image_id, it.split) for it in items] == [("7", "test"), ("8", "train")]
    assert Path(items[0].image) == tmp_path / "val2014" / "x.jpg"
    with pytest.raises(FileNotFoundError, match="karpathy"):
        read_karpathy(tmp_path / "none.json", tmp_path)


def test_load_corpus_for_each_format(tmp_path: Path) -> None:
    ann, img_dir = _coco(tmp_path)
    coco = load_corpus(
        "coco",
        tmp_path,
        annotations={"train": str(ann), "test": str(ann)},
        image_dirs={"train": str(img_dir), "test": str(img_dir)},
    )
    assert len(coco.split("train")) == 2 and len(coco.split("test")) == 2
    with pytest.raises(ValueError, match="'val' split is empty"):
        coco.split("val")
    scenes = load_corpus("scenes", tmp_path, smoke=True)
    assert scenes.images is not None and len(scenes.split("test")) == 24
    with pytest.raises(ValueError, match=r"data\.name"):
        load_corpus("imagenet", tmp_path)


def test_caption_dataset_and_collate_drop_bad_images(tmp_path: Path) -> None:
    ann, img_dir = _coco(tmp_path)
    (img_dir / "000002.jpg").write_bytes(b"not a jpeg")
    items = read_coco(ann, img_dir, "train")
    vocab = Vocabulary.build([c for it in items for c in it.captions])
    ds = CaptionDataset(items, vocab, ImageTransform(size=24), captions_per_image=None, max_len=3)
    batch = collate_captions([ds[0], ds[1]], pad_id=vocab.pad_id)
    assert batch["images"].shape == (1, 3, 24, 24)
    assert batch["ids"] == ["1"] and batch["skipped"][0][0].endswith("000002.jpg")
    assert batch["tokens"].shape == (2, 5)  # <start> + 3 words (cut) + <end>
    assert batch["img_index"].tolist() == [0, 0] and batch["lengths"].tolist() == [5, 5]
    assert vocab.decode(batch["tokens"][1]) == "a brown dog"


def test_array_backed_items_and_caption_sampling() -> None:
    corpus_imgs = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    corpus_imgs[1] = 255
    from lstm_seq.vision.data.formats import CaptionItem

    items = [CaptionItem("#1", ["a b", "c d", "e f"], "train", "s1")]
    vocab = Vocabulary.build(["a b c d e f"])
    ds = CaptionDataset(
        items,
        vocab,
        ImageTransform(size=16, mean=(0, 0, 0), std=(1, 1, 1)),
        captions_per_image=2,
        images=corpus_imgs,
    )
    item = ds[0]
    assert item["image"].shape == (3, 16, 16) and float(item["image"].min()) == pytest.approx(1.0)
    assert len(item["tokens"]) == 2 and item["refs"] == ["a b", "c d", "e f"]


@pytest.mark.parametrize("fmt", ["coco", "flickr", "karpathy"])
def test_each_format_trains_and_tests_one_batch(fmt: str, tmp_path: Path) -> None:
    """Reader → corpus → vocabulary → data module → Lightning fit/test on a tiny fake dataset of each format
    (no validation split: its loader is never asked for)."""
    import lightning.pytorch as pl

    from lstm_seq.vision.data.datamodule import CaptionDataModule
    from lstm_seq.vision.module import CaptionModule

    names = [f"img{i}.jpg" for i in range(6)]
    _images(tmp_path / "imgs", names)
    caps = {n: [f"a photo number {i}", f"picture {i} of a thing"] for i, n in enumerate(names)}
    if fmt == "coco":
        ann = {
            "images": [{"id": i, "file_name": n} for i, n in enumerate(names)],
            "annotations": [{"image_id": i, "caption": c} for i, n in enumerate(names) for c in caps[n]],
        }
        (tmp_path / "c.json").write_text(json.dumps(ann))
        opts = {
            "annotations": {s: str(tmp_path / "c.json") for s in ("train", "test")},
            "image_dirs": {s: str(tmp_path / "imgs") for s in ("train", "test")},
        }
    elif fmt == "flickr":
        (tmp_path / "t.txt").write_text(
            "".join(f"{n}#{k}\t{c}\n" for n in names for k, c in enumerate(caps[n]))
        )
        (tmp_path / "train.txt").write_text("\n".join(names[:4]))
        (tmp_path / "test.txt").write_text("\n".join(names[4:]))
        opts = {
            "token_file": str(tmp_path / "t.txt"),
            "image_dir": str(tmp_path / "imgs"),
            "split_files": {"train": str(tmp_path / "train.txt"), "test": str(tmp_path / "test.txt")},
        }
    else:
        data = {
            "images": [
                {
                    "filename": n,
                    "split": "train" if i < 4 else "test",
                    "imgid": i,
                    "sentences": [{"raw": c} for c in caps[n]],
                }
                for i, n in enumerate(names)
            ]
        }
        (tmp_path / "k.json").write_text(json.dumps(data))
        opts = {"json_file": str(tmp_path / "k.json"), "image_dir": str(tmp_path / "imgs")}
    corpus = load_corpus(fmt, tmp_path, **opts)
    vocab = Vocabulary.build([c for it in corpus.split("train") for c in it.captions])
    transform = ImageTransform(size=32)
    model = CaptionModule(vocab.to_dict(), transform.to_dict(), {"name": "mobilenet_v3_small", "output_stride": 16},
                          {"variant": "attention", "embed_dim": 16, "hidden_size": 32, "attention_dim": 16}, {"beam_size": 2, "max_len": 6})  # fmt: skip
    dm = CaptionDataModule(corpus, vocab, transform, batch_size=4, num_workers=0)

    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, dm.train_dataloader())
    said = caption_split(model, dm.test_dataloader())
    assert len(said.hyps) == len(said.ids) == len(corpus.split("test")) and said.loss is not None
    assert said.ids == [it.image_id for it in corpus.split("test")] and all(
        isinstance(h, str) for h in said.hyps
    )
