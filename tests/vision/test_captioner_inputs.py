"""Captioner inputs as users have them: a numpy (H, W, 3) image is one image (not a list of rows), a (B, H, W, 3)
array a batch; what is not an item is a clear TypeError; beam_size ≤ 0 is refused; hidden files and folders
are not captioned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lstm_seq.vision import Captioner
from lstm_seq.vision.data.images import list_images
from lstm_seq.vision.vocab import Vocabulary
from tests.vision.conftest import make_module


@pytest.fixture(scope="module")
def captioner() -> Captioner:
    return Captioner(
        make_module("attention", Vocabulary(["a", "red", "blue", "circle", "square", "left", "of"]))
    )


def test_numpy_images_are_images(captioner: Captioner, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    hwc = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(hwc).save(tmp_path / "a.png")
    (from_file,) = captioner.caption(tmp_path / "a.png")
    out = captioner.caption(hwc)  # before: 40 results, one per row, each an error
    assert [c.path for c in out] == ["<image 0>"] and out[0].ok and out[0].text == from_file.text
    assert captioner.caption(hwc.astype(np.float32) / 255)[0].text == from_file.text
    batch = captioner.caption([np.stack([hwc, hwc])])
    assert [c.path for c in batch] == ["<image 0.0>", "<image 0.1>"] and all(
        c.text == from_file.text for c in batch
    )
    bad = captioner.caption(
        [np.zeros((5, 5, 7), np.uint8), np.full((4, 4, 3), 2.0, np.float32), np.zeros((4, 4), np.int64)]
    )
    assert [c.ok for c in bad] == [False, False, False]
    assert "(H, W, 3)" in bad[0].error and "[0, 1]" in bad[1].error and "uint8" in bad[2].error


def test_what_is_not_an_item_and_beam_size_below_one(captioner: Captioner) -> None:
    with pytest.raises(TypeError, match=r"caption\(\) takes a path.*got int"):
        captioner.caption(5)
    for k in (0, -3):
        with pytest.raises(ValueError, match=rf"beam_size must be ≥ 1 \(1: greedy\), got {k}"):
            captioner.caption(np.zeros((8, 8, 3), np.uint8), beam_size=k)
        with pytest.raises(ValueError, match=rf"beam_size and max_len must be ≥ 1 .*got {k}"):
            captioner.module.generate(torch.zeros(1, 3, 32, 32), beam_size=k)


def test_hidden_files_and_folders_are_not_captioned(captioner: Captioner, tmp_path: Path) -> None:
    for rel in ["a.png", ".b.png", ".thumbnails/c.png", "sub/d.png", "sub/.cache/e.png"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (200, 10, 10)).save(tmp_path / rel)
    assert list_images(tmp_path) == [tmp_path / "a.png", tmp_path / "sub" / "d.png"]
    assert [c.path for c in captioner.caption(tmp_path)] == [
        str(tmp_path / "a.png"),
        str(tmp_path / "sub" / "d.png"),
    ]
