"""The test split's captions through ``trainer.predict``: :meth:`CaptionModule.predict_step` goes through the
same :meth:`~CaptionModule.caption_batch` as validation (the same captions at the same beam), searches with
:attr:`~CaptionModule.predict_beam_size` (by default the model's ``beam_size``), and :meth:`Captioned.from_batches`
gathers the batches in loader order with the loss weighted by images."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader

from lstm_seq.vision.data.datasets import collate_captions
from lstm_seq.vision.decoding.captioned import Captioned, CaptionedBatch
from lstm_seq.vision.decoding.evaluate import caption_split
from lstm_seq.vision.module import CaptionModule
from lstm_seq.vision.vocab import Vocabulary
from tests.vision.conftest import make_module

CAPTIONS = ["a red circle", "a blue square left of a red circle", "there is a blue square", "a red square"]


def _perturbed(variant: str, vocab: Vocabulary) -> CaptionModule:
    m = make_module(variant, vocab, beam_size=3, max_len=6)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # away from the initialisation, so that images get different captions
        for p in m.decoder.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=g))
    return m


def _loader(vocab: Vocabulary) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    items: list[dict[str, Any]] = [
        {"image": torch.randn(3, 32, 32, generator=g), "tokens": [vocab.encode(c) for c in CAPTIONS[i % 4 :]],
         "refs": CAPTIONS[i % 4 :], "id": f"img-{i}", "path": f"{i}.png"}
        for i in range(7)
    ]  # fmt: skip
    items.insert(3, {"error": "unreadable", "path": "bad.png"})
    items.insert(4, {"error": "unreadable", "path": "bad2.png"})  # batch 2 of 2: no image at all
    return DataLoader(
        items, batch_size=2, shuffle=False, collate_fn=lambda b: collate_captions(b, vocab.pad_id)
    )


@pytest.mark.parametrize("variant", ["show_tell", "attention"])
def test_predict_captions_are_the_validation_captions_at_the_same_beam(
    variant: str, vocab: Vocabulary
) -> None:
    m = _perturbed(variant, vocab).train()
    loader = _loader(vocab)
    seen: list[dict[str, list[Any]]] = []
    m._eval_end = lambda stage: seen.append(m._eval) or {}  # type: ignore[method-assign]
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu")  # fmt: skip
    trainer.validate(m, loader, verbose=False)
    del m._eval_end
    (val,) = seen
    said = caption_split(m.train(), loader, beam_size=1)  # validation searches greedily
    assert m.training and m.predict_beam_size is None  # restored
    assert said.ids == val["ids"] == [f"img-{i}" for i in range(7)] and said.hyps == val["hyps"]
    assert said.refs == val["refs"] and len(set(said.hyps)) > 1


@pytest.mark.parametrize("variant", ["show_tell", "attention"])
def test_the_test_searches_with_the_models_beam_and_weights_the_loss_by_images(
    variant: str, vocab: Vocabulary
) -> None:
    m = _perturbed(variant, vocab)
    loader = _loader(vocab)
    said = caption_split(m, loader)
    assert m.predict_beam_size is None
    hyps, loss_sum, n = [], 0.0, 0
    with torch.no_grad():
        for b in loader:
            if not b["ids"]:
                continue
            hyps += vocab.decode_batch(m.generate(b["images"], beam_size=3).tokens)
            ce, _ = m.caption_loss(b)
            loss_sum, n = loss_sum + float(ce) * len(b["ids"]), n + len(b["ids"])
    assert said.hyps == hyps and said.loss_sum == loss_sum and said.loss_weight == n == 7
    assert said.hyps != caption_split(m, loader, beam_size=1).hyps  # the beam is the model's, not greedy
    m.predict_beam_size = 1  # what a recipe sets for another test beam
    assert caption_split(m, loader).hyps == caption_split(m, loader, beam_size=1).hyps


def test_from_batches_skips_none_and_weights_the_loss_by_images() -> None:
    one = CaptionedBatch(["a"], ["x"], [["ra"]], torch.tensor(3.0))
    two = CaptionedBatch(["b", "c"], ["y", "z"], [["rb"], ["rc"]], torch.tensor(1.5))
    said = Captioned.from_batches([one, None, two])
    assert (
        said.ids == ["a", "b", "c"] and said.hyps == ["x", "y", "z"] and said.refs == [["ra"], ["rb"], ["rc"]]
    )
    assert said.loss_sum == 6.0 and said.loss_weight == 3 and said.loss == 2.0
    assert Captioned.from_batches([]).loss is None
