"""Damaged caches of the captioning side: a truncated scenes images.npy or captions.json, or a truncated feature
cache, is named in a warning and built again (the same contents); temporaries of killed builds are removed."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lstm_seq.stale_tmp import tmp_name
from lstm_seq.vision.data.datasets import CaptionDataset
from lstm_seq.vision.data.formats import scene_items
from lstm_seq.vision.data.images import ImageTransform
from lstm_seq.vision.data.synth import SceneConfig, load_or_generate
from lstm_seq.vision.encoder import CNNEncoder
from lstm_seq.vision.feature_cache import build_feature_cache, cache_key
from lstm_seq.vision.vocab import Vocabulary

SMALL = SceneConfig(n_train=6, n_val=2, n_test=2)


def dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(proc.stdout)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("name", ["images.npy", "captions.json"])
def test_a_truncated_scene_cache_is_named_and_generated_again(
    tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    images, records = load_or_generate(SMALL, tmp_path)
    damaged = tmp_path / "scenes" / SMALL.key() / name
    _truncate(damaged)
    with caplog.at_level(logging.WARNING):
        again, again_records = load_or_generate(SMALL, tmp_path)  # before: a raw numpy/JSON error, every run
    assert f"{damaged}: the cached scene corpus is damaged" in caplog.text
    assert np.array_equal(again, images) and again_records == records
    assert load_or_generate(SMALL, tmp_path)[0].shape == images.shape  # and it stays whole
    assert sorted(p.name for p in (tmp_path / "scenes").iterdir()) == [SMALL.key()]


def test_temporary_scene_folders_of_killed_builds_are_removed(tmp_path: Path) -> None:
    root = tmp_path / "scenes"
    host = tmp_name("x").split("@")[1]
    dead = root / f".{SMALL.key()}.tmp{dead_pid()}@{host}"
    legacy = root / f".{SMALL.key()}.ioksxvun"  # the earlier naming (no writer), an hour old
    live = root / f".{SMALL.key()}.tmp{os.getppid()}@{host}"
    for d in (dead, legacy, live):
        d.mkdir(parents=True)
        (d / "images.npy").write_bytes(b"\x93NUMPY")
    os.utime(legacy, (0, 0))
    load_or_generate(SMALL, tmp_path)
    assert not dead.exists() and not legacy.exists() and live.exists()


def test_a_damaged_feature_cache_is_named_and_computed_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    images, records = load_or_generate(SceneConfig(n_train=4, n_val=0, n_test=0), tmp_path)
    items = scene_items(records)
    ds = CaptionDataset(
        items, Vocabulary.build([c for it in items for c in it.captions]), ImageTransform(32), images=images
    )
    enc = CNNEncoder("resnet18", output_stride=16, frozen=True)
    feats, _ = build_feature_cache(enc, ds, tmp_path)
    first = np.array(feats)
    key = cache_key(enc, ds)
    npy, meta = tmp_path / "features" / f"{key}.npy", tmp_path / "features" / f"{key}.json"
    stale = tmp_path / "features" / f".{key}.npy.tmp{dead_pid()}@{tmp_name('x').split('@')[1]}.abc123.tmp"
    stale.write_bytes(b"\0" * 1000)
    for damaged in (npy, meta):
        _truncate(damaged)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            feats, errors = build_feature_cache(enc, ds, tmp_path)
        assert f"{damaged}: the feature cache is damaged" in caplog.text
        assert np.array_equal(np.array(feats), first) and errors == [None] * 4
    assert not stale.exists()
