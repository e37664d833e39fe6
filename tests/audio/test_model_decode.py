"""Acoustic model, CTC feasibility, greedy and beam + LM decoding, the ARPA language model."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import lstm_seq
from lstm_seq.audio.decoding.decode import BeamConfig, greedy_decode
from lstm_seq.audio.decoding.lm import estimate_arpa
from lstm_seq.audio.decoding.setup import DecodingSetup
from lstm_seq.audio.model import AcousticModel, ModelConfig
from lstm_seq.audio.module import ctc_feasible
from lstm_seq.audio.vocab import CharVocab


@pytest.mark.parametrize(("subsample", "bidirectional"), [(4, True), (2, False), (1, True)])
def test_model_shapes_and_padding_invariance(subsample: int, bidirectional: bool) -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(
        subsample=subsample, conv_channels=4, hidden_size=16, num_layers=2, bidirectional=bidirectional
    )
    m = AcousticModel(39, 29, cfg).eval()
    assert isinstance(m.lstm, lstm_seq.LSTM)
    assert not any(isinstance(x, nn.LSTM | nn.LSTMCell) for x in m.modules())
    frames = torch.tensor([37, 20])
    x = torch.randn(2, 37, 39) * (torch.arange(37)[None, :] < frames[:, None])[..., None]
    y, lengths = m(x, frames)
    assert y.shape == (2, math.ceil(37 / subsample), 29)
    assert lengths.tolist() == [math.ceil(37 / subsample), math.ceil(20 / subsample)]
    alone, _ = m(x[1:, :20], frames[1:])
    torch.testing.assert_close(alone[0], y[1, : lengths[1]], rtol=1e-4, atol=1e-5)


def test_ctc_feasibility_counts_repeats() -> None:
    v = CharVocab()
    targets = torch.tensor([v.encode("door"), v.encode("abcd")])
    lengths = torch.tensor([4, 4])
    # "door" needs a blank between the two o's: 5 steps; "abcd" needs 4
    assert ctc_feasible(torch.tensor([4, 4]), targets, lengths).tolist() == [False, True]
    assert ctc_feasible(torch.tensor([5, 3]), targets, lengths).tolist() == [True, False]


def _emissions(vocab: CharVocab, frames: list[dict[str, float]]) -> torch.Tensor:
    """(1, T, V) log-probabilities from a list of {symbol: prob} per frame (rest → blank)."""
    out = torch.full((1, len(frames), len(vocab)), 1e-4)
    for t, probs in enumerate(frames):
        for sym, p in probs.items():
            out[0, t, vocab.tokens.index(sym)] = p
        out[0, t, 0] = max(1e-4, 1.0 - sum(probs.values()))
    return (out / out.sum(-1, keepdim=True)).log()


def test_greedy_collapses_repeats_and_blanks() -> None:
    v = CharVocab()
    lp = _emissions(v, [{"a": 0.9}, {"a": 0.9}, {}, {"a": 0.9}, {" ": 0.9}, {"b": 0.9}, {}])
    assert greedy_decode(lp, torch.tensor([7]), v) == ["aa b"]
    assert greedy_decode(lp, torch.tensor([2]), v) == ["a"]


def test_beam_with_lm_fixes_an_ambiguous_word(tmp_path: Path) -> None:
    """Acoustics slightly prefer "rad", the LM (and lexicon) know only "red": beam + LM says "red"."""
    v = CharVocab()
    texts = ["turn the red door", "open the red box", "the red cup"] * 5
    frames = [{"t": 0.9}, {"h": 0.9}, {"e": 0.9}, {" ": 0.9}, {"r": 0.9}, {"a": 0.5, "e": 0.4}, {"d": 0.9}, {" ": 0.9},
              {"d": 0.9}, {"o": 0.9}, {}, {"o": 0.9}, {"r": 0.9}]  # fmt: skip
    lp = _emissions(v, frames)
    n = torch.tensor([len(frames)])
    assert greedy_decode(lp, n, v) == ["the rad door"]
    beam = DecodingSetup.from_texts(texts).decoder(v, BeamConfig(beam_size=20, lm_weight=1.0), tmp_path)
    assert beam(lp, n) == ["the red door"]
    assert not (tmp_path / "lm.arpa").exists()  # the torch backend reads the LM from memory, no file
    free = DecodingSetup.from_texts([]).decoder(
        v, BeamConfig(beam_size=20, lexicon=False, lm_weight=0.0, lm_order=0), tmp_path / "free"
    )
    assert free(lp, n) == ["the rad door"]  # no lexicon, no LM: spelling follows the acoustics


def _arpa_model(text: str) -> tuple[dict[tuple[str, ...], float], dict[tuple[str, ...], float], int]:
    probs: dict[tuple[str, ...], float] = {}
    bows: dict[tuple[str, ...], float] = {}
    order = 0
    for line in text.splitlines():
        m = re.match(r"\\(\d)-grams:", line)
        if m:
            order = int(m.group(1))
            continue
        parts = line.split("\t")
        if order and len(parts) >= 2:
            gram = tuple(parts[1].split())
            probs[gram] = 10 ** float(parts[0])
            if len(parts) == 3:
                bows[gram] = 10 ** float(parts[2])
    return probs, bows, order


def _p(probs: dict, bows: dict, gram: tuple[str, ...]) -> float:
    if gram in probs:
        return probs[gram]
    if len(gram) == 1:
        return probs[("<unk>",)]
    return bows.get(gram[:-1], 1.0) * _p(probs, bows, gram[1:])


@pytest.mark.parametrize("order", [1, 2, 3])
def test_arpa_distributions_sum_to_one(order: int) -> None:
    texts = ["turn left at the red door", "turn right at the door", "open the red box", "the box"]
    probs, bows, top = _arpa_model(estimate_arpa(texts, order=order))
    assert top == order
    words = sorted({w for t in texts for w in t.split()} | {"</s>", "<unk>"})
    for ctx in [(), ("<s>",), ("the",), ("the", "red"), ("at", "the"), ("door",)]:
        ctx = ctx[-(order - 1) :] if order > 1 else ()
        total = sum(_p(probs, bows, (*ctx, w)) for w in words)
        assert total == pytest.approx(1.0, abs=1e-4), ctx
