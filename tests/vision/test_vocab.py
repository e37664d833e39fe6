"""Vocabulary: coco-style tokenisation, min-frequency threshold, specials, round trips."""

from __future__ import annotations

import pytest

from lstm_seq.text import tokenize
from lstm_seq.vision.vocab import SPECIALS, Vocabulary


def test_tokenize_lowercases_and_drops_punctuation() -> None:
    assert tokenize("A Man's red-and-white kite, flying.") == [
        "a",
        "man",
        "'s",
        "red-and-white",
        "kite",
        "flying",
    ]
    assert tokenize("  ") == []


def test_build_min_freq_and_specials() -> None:
    vocab = Vocabulary.build(["a red circle", "a blue circle", "a red square"], min_freq=2)
    assert tuple(vocab.itos[:4]) == SPECIALS
    assert (vocab.pad_id, vocab.start_id, vocab.end_id, vocab.unk_id) == (0, 1, 2, 3)
    assert set(vocab.itos[4:]) == {"a", "red", "circle"}
    ids = vocab.encode("a blue circle")
    assert ids[0] == vocab.start_id and ids[-1] == vocab.end_id
    assert ids[2] == vocab.unk_id
    assert vocab.decode(ids) == "a <unk> circle"


def test_decode_stops_at_end_and_round_trips_through_dict() -> None:
    vocab = Vocabulary.build(["there is a red circle"])
    ids = [*vocab.encode("there is a red circle"), vocab.stoi["red"]]
    assert vocab.decode(ids) == "there is a red circle"
    again = Vocabulary.from_dict(vocab.to_dict())
    assert again.itos == vocab.itos


def test_bad_min_freq_and_empty_vocab_raise() -> None:
    with pytest.raises(ValueError, match="min_freq"):
        Vocabulary.build(["a"], min_freq=0)
    with pytest.raises(ValueError, match="no word"):
        Vocabulary.build(["a b"], min_freq=5)
