"""Fixtures for the captioning tests: a tiny vocabulary and untrained models (real code, tiny sizes)."""

from __future__ import annotations

import pytest
import torch

from lstm_seq.vision.data.images import ImageTransform
from lstm_seq.vision.module import CaptionModule
from lstm_seq.vision.vocab import Vocabulary

WORDS = ["a", "red", "blue", "circle", "square", "left", "of", "there", "is", "and"]


@pytest.fixture
def vocab() -> Vocabulary:
    return Vocabulary(WORDS)


def make_module(variant: str, vocab: Vocabulary, **kw: object) -> CaptionModule:
    torch.manual_seed(0)
    dec = {"variant": variant, "embed_dim": 16, "hidden_size": 32, "dropout": 0.0}
    if variant == "attention":
        dec["attention_dim"] = 16
    return CaptionModule(
        vocab.to_dict(),
        ImageTransform(size=32).to_dict(),
        {"name": "resnet18", "output_stride": 16},
        dec,
        # the search tests name their own repeat penalty (CaptionModelConfig's default penalises repeated bigrams)
        {"no_repeat_ngram": 0, "repeat_penalty": 0.0, **kw},
    ).eval()


@pytest.fixture(params=["show_tell", "attention"])
def module(request: pytest.FixtureRequest, vocab: Vocabulary) -> CaptionModule:
    return make_module(request.param, vocab)
