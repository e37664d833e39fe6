"""A captioning run checks, before its first training step, that every split it needs has images: an empty
test split used to fail only after training."""

from __future__ import annotations

import pytest

from lstm_seq.vision import recipe
from lstm_seq.vision.data.corpus import Corpus
from lstm_seq.vision.data.datamodule import CaptionDataModule
from lstm_seq.vision.data.formats import CaptionItem
from lstm_seq.vision.data.images import ImageTransform
from lstm_seq.vision.vocab import Vocabulary


def _items(split: str, n: int) -> list[CaptionItem]:
    return [CaptionItem(f"{split}{i}.jpg", ["a red circle"], split, f"{split}{i}") for i in range(n)]


def test_an_empty_test_split_is_refused_before_training() -> None:
    corpus = Corpus({"train": _items("train", 3), "val": _items("val", 1), "test": []})
    dm = CaptionDataModule(corpus, Vocabulary(["a", "red", "circle"]), ImageTransform(size=16))
    with pytest.raises(ValueError, match=r"the 'test' split is empty \(have: \['train', 'val'\]\)"):
        recipe.check_inputs(dm)
    corpus.splits["test"] = _items("test", 2)
    assert recipe.check_inputs(dm) == {"train": 3, "val": 1, "test": 2}
