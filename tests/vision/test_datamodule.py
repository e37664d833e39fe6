"""The caption data module on a tiny generated scene corpus: the training batches (order, caption draw,
augmentation) are those the loaders gave before the data module existed, evaluation reads every item in
order, the feature cache is built per split, and the scene-only test metrics come from the corpus itself."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from lstm_seq.vision import recipe
from lstm_seq.vision.data.corpus import Corpus, load_corpus
from lstm_seq.vision.data.datamodule import CaptionDataModule
from lstm_seq.vision.data.datasets import LoaderConfig
from lstm_seq.vision.data.synth import held_out_pairs
from lstm_seq.vision.module import CaptionModule

SCENES = {"n_train": 10, "n_val": 3, "n_test": 4, "image_size": 32, "max_objects": 2, "captions_per_image": 3}
DATA = {
    "min_freq": 1, "image_size": 32, "mean": (0.5,) * 3, "std": (0.25,) * 3, "batch_size": 4,
    "num_workers": 0, "train_captions": 2, "max_len": 12, "max_pixels": 10**7,
    "augment": asdict(LoaderConfig().augment),
}  # fmt: skip

# Written down from the training loader of the code before the data module (same corpus, model and seed 7):
# per batch (epoch, image ids, the first caption of each image, the sum of the normalised images). Epoch 1
# is another order, another caption draw and another augmentation (the flips rewrite "left"/"right").
BEFORE = [
    (0, ["scene-8", "scene-2", "scene-6", "scene-3"],
     ["a small orange triangle right of a small green circle", "an image with a big purple cross",
      "a small green cross and a big orange square", "there is a small cyan square and a big white diamond"],
     -6012.5),
    (0, ["scene-4", "scene-7", "scene-9", "scene-1"],
     ["a big white cross <unk> the <unk>", "a big red square on a blobs background",
      "a big orange square below a big cyan cross", "a big yellow triangle and a big red triangle on a stripes"],
     -6657.9),
    (0, ["scene-0", "scene-5"],
     ["a small orange circle left of a big purple circle", "a big green circle and a small white star"], -4042.0),
    (1, ["scene-9", "scene-6", "scene-4", "scene-3"],
     ["there is a big orange square and a big cyan cross", "a big orange square and a small green cross on a gradient",
      "a white cross that is big", "a small cyan square above a big white diamond"],
     -5795.4),
    (1, ["scene-5", "scene-7", "scene-1", "scene-2"],
     ["two shapes a small white star and a big green circle", "a red square that is big",
      "a big yellow triangle left of a big red triangle", "one big purple cross"],
     -8012.6),
    (1, ["scene-8", "scene-0"],
     ["a small green circle right of a small orange triangle", "a small orange circle left of a big purple circle"],
     -2634.7),
]  # fmt: skip


def _model(corpus: Corpus, **encoder: Any) -> CaptionModule:
    torch.manual_seed(0)
    enc = {"name": "mobilenet_v3_small", "output_stride": 16, **encoder}
    dec = {"variant": "show_tell", "embed_dim": 8, "hidden_size": 8}
    return recipe.build_model(corpus, DATA, enc, dec, {"beam_size": 1, "max_len": 4})


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return load_corpus("scenes", tmp_path_factory.mktemp("scenes"), **SCENES)


def test_training_batches_are_those_of_the_loaders_before(scenes: Corpus) -> None:
    model = _model(scenes)
    train = recipe.datamodule(model, scenes, DATA, seed=7).train_dataloader()
    seen = []
    for epoch in (0, 1):
        train.batch_sampler.set_epoch(epoch)  # what Lightning does at each epoch start
        for b in train:
            per_image = b["img_index"].tolist()
            first = [
                model.vocab.decode(b["tokens"][per_image.index(k)].tolist()) for k in range(len(b["ids"]))
            ]
            assert per_image == [k for k in range(len(b["ids"])) for _ in range(DATA["train_captions"])]
            seen.append((epoch, b["ids"], first, b["images"].sum().item()))
    assert [s[:3] for s in seen] == [s[:3] for s in BEFORE]
    assert [s[3] for s in seen] == pytest.approx([s[3] for s in BEFORE], abs=0.1)


def test_evaluation_reads_every_image_in_order_with_all_its_captions(scenes: Corpus) -> None:
    dm = recipe.datamodule(_model(scenes), scenes, DATA, seed=7)
    assert recipe.check_inputs(dm) == {"train": 10, "val": 3, "test": 4}
    for split, loader in (("val", dm.val_dataloader()), ("test", dm.test_dataloader())):
        batches = list(loader)
        items = scenes.split(split)
        assert [i for b in batches for i in b["ids"]] == [it.image_id for it in items]
        assert [r for b in batches for r in b["refs"]] == [it.captions for it in items]  # not augmented
        assert sum(len(b["tokens"]) for b in batches) == SCENES["captions_per_image"] * len(items)
    assert dm.dataset("train").augment is not None and dm.dataset("test").augment is None


def test_a_frozen_encoder_reads_cached_features_per_split(scenes: Corpus, tmp_path: Path) -> None:
    model = _model(scenes, frozen=True)
    dm = recipe.datamodule(model, scenes, {**DATA, "feature_cache": True, "augment": None}, 7, tmp_path)
    recipe.check_inputs(dm)
    assert len(list((tmp_path / "features").glob("*.npy"))) == 3
    batch = next(iter(dm.test_dataloader()))
    grid, _ = model.encoder(dm.dataset("test").load(0)[None])
    assert batch["images"].shape[0] == 4 and batch["images"][0].shape == grid[0].shape  # (L, C), not pixels
    torch.testing.assert_close(batch["images"][0], grid[0], atol=2e-2, rtol=1e-2)  # stored as float16
    with pytest.raises(ValueError, match=r"frozen encoder and data\.cache_dir"):
        CaptionDataModule(
            scenes, model.vocab, model.transform, encoder=_model(scenes).encoder, cache_dir=tmp_path
        )


def test_scene_metrics_come_from_the_corpus_not_its_name(scenes: Corpus, tmp_path: Path) -> None:
    """The scenes know their objects and held-out pairs: novel_pair_recall and the object figures; a
    Karpathy-format corpus does not: the same metrics without them."""
    assert scenes.composition is not None and scenes.composition.held_out == held_out_pairs()
    model = _model(scenes)
    metrics, predictions = recipe.evaluate(
        model, recipe.datamodule(model, scenes, DATA), tmp_path / "s", True
    )
    assert {"test/novel_pair_recall", "test/object_recall", "test/hallucination_rate"} <= set(metrics)
    assert [p["id"] for p in predictions] == [it.image_id for it in scenes.split("test")]

    names = [f"img{i}.jpg" for i in range(4)]
    (tmp_path / "imgs").mkdir()
    for i, n in enumerate(names):
        Image.new("RGB", (24, 20), (60 * i, 90, 150)).save(tmp_path / "imgs" / n)
    split = ["train", "train", "val", "test"]
    images = [
        {"filename": n, "split": s, "imgid": i, "sentences": [{"raw": f"a red circle number {i}"}]}
        for i, (n, s) in enumerate(zip(names, split, strict=True))
    ]
    (tmp_path / "k.json").write_text(json.dumps({"images": images}))
    photos = load_corpus(
        "karpathy", tmp_path, json_file=str(tmp_path / "k.json"), image_dir=str(tmp_path / "imgs")
    )
    assert photos.composition is None
    model = _model(photos)
    dm = recipe.datamodule(model, photos, {**DATA, "augment": None})
    metrics, _ = recipe.evaluate(model, dm, tmp_path / "k", True)
    assert "test/bleu4" in metrics and "test/cider" in metrics
    assert not [k for k in metrics if k == "test/novel_pair_recall" or "object" in k or "colour" in k]
