"""Feature cache for a frozen encoder: equal to on-the-fly features, reused, keyed, worker-safe."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lstm_seq.vision.data.datasets import CaptionDataset, collate_captions
from lstm_seq.vision.data.formats import scene_items
from lstm_seq.vision.data.images import ImageTransform
from lstm_seq.vision.data.synth import SceneConfig, generate
from lstm_seq.vision.encoder import CNNEncoder
from lstm_seq.vision.feature_cache import build_feature_cache
from lstm_seq.vision.vocab import Vocabulary


@pytest.fixture
def scene_ds() -> CaptionDataset:
    images, records = generate(SceneConfig(n_train=12, n_val=0, n_test=0))
    vocab = Vocabulary.build([c for r in records for c in r["captions"]])
    return CaptionDataset(scene_items(records), vocab, ImageTransform(size=64), images=images)


def test_cache_matches_encoder_and_is_reused(scene_ds: CaptionDataset, tmp_path: Path) -> None:
    torch.manual_seed(0)
    enc = CNNEncoder("resnet18", output_stride=16, frozen=True)
    feats, errors = build_feature_cache(enc, scene_ds, tmp_path, batch_size=5)
    assert feats.shape == (12, 16, 256) and errors == [None] * 12
    with torch.no_grad():
        live, _ = enc(torch.stack([scene_ds.load(i) for i in range(12)]))
    assert np.allclose(feats, live.numpy(), rtol=1e-2, atol=1e-2)  # stored as float16
    files = sorted((tmp_path / "features").iterdir())
    stamps = [f.stat().st_mtime_ns for f in files]
    build_feature_cache(enc, scene_ds, tmp_path)
    assert [f.stat().st_mtime_ns for f in sorted((tmp_path / "features").iterdir())] == stamps
    torch.manual_seed(1)
    other = CNNEncoder("resnet18", output_stride=16, frozen=True)  # other weights → another key
    build_feature_cache(other, scene_ds, tmp_path)
    assert len(list((tmp_path / "features").glob("*.npy"))) == 2
    with pytest.raises(ValueError, match="frozen"):
        build_feature_cache(CNNEncoder("resnet18", output_stride=16), scene_ds, tmp_path)


def test_cached_dataset_with_several_workers(scene_ds: CaptionDataset, tmp_path: Path) -> None:
    enc = CNNEncoder("resnet18", output_stride=16, frozen=True)
    scene_ds.features, scene_ds.feature_errors = build_feature_cache(enc, scene_ds, tmp_path)
    loader = DataLoader(
        scene_ds, batch_size=4, num_workers=2, collate_fn=functools.partial(collate_captions, pad_id=0)
    )
    batches = list(loader)
    assert sum(len(b["ids"]) for b in batches) == 12
    assert batches[0]["images"].shape == (4, 16, 256)
    assert torch.allclose(
        batches[0]["images"][1], torch.from_numpy(np.asarray(scene_ds.features[1], dtype=np.float32))
    )
