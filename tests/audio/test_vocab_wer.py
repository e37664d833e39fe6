"""Vocabulary/normalisation and WER/CER (cross-checked against jiwer)."""

from __future__ import annotations

import jiwer
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstm_seq.audio.vocab import CharVocab, normalize_text
from lstm_seq.metrics.wer import cer, char_errors, edit_distance, wer, word_errors


def test_vocab_roundtrip_and_blank() -> None:
    v = CharVocab()
    assert len(v) == 29 and v.tokens[0] == "<blank>" and v.blank == 0
    ids = v.encode("it's a red door")
    assert 0 not in ids
    assert v.decode(ids) == "it's a red door"
    assert CharVocab.from_dict(v.to_dict()) == v
    with pytest.raises(KeyError, match="not in the vocabulary"):
        v.encode("Red!")


def test_normalize_counts_out_of_vocabulary() -> None:
    n = normalize_text("Café — it’s  NUMBER 42, ok?")
    assert n.text == "cafe it's number ok"
    assert n.n_oov == 2  # the two digits; accents, dashes, curly quotes and punctuation are mapped
    assert normalize_text("50% off ☺").n_oov == 4
    assert normalize_text("well-known").text == "well known"
    assert normalize_text("hello world").n_oov == 0


def test_wer_cer_by_hand() -> None:
    refs = ["turn left at the door", "open the box"]
    hyps = ["turn right at door", "open the box now"]
    # sub left→right, del the; ins now → 3 errors / 8 words
    assert word_errors(refs, hyps).errors == 3
    assert wer(refs, hyps) == pytest.approx(3 / 8)
    assert cer(["abc"], ["abd"]) == pytest.approx(1 / 3)
    assert edit_distance("kitten", "sitting") == 3
    assert wer([""], [""]) == 0.0
    with pytest.raises(ValueError, match="2 references but 1"):
        wer(["a", "b"], ["a"])


def dp_distance(ref: list[str] | str, hyp: list[str] | str) -> int:
    """The textbook dynamic-programming Levenshtein distance (the implementation rapidfuzz replaced)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i]
        for j, h in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1]


words = st.sampled_from(["red", "door", "turn", "left", "the", "a", "box", "it's"])
sentence = st.lists(words, min_size=1, max_size=8).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(sentence, st.lists(words, max_size=8).map(" ".join)), min_size=1, max_size=5))
def test_matches_jiwer(pairs: list[tuple[str, str]]) -> None:
    refs = [r for r, _ in pairs]
    hyps = [h for _, h in pairs]
    assert wer(refs, hyps) == pytest.approx(jiwer.wer(refs, hyps))
    hyps_nonempty = [h or "x" for h in hyps]
    assert cer(refs, hyps_nonempty) == pytest.approx(jiwer.cer(refs, hyps_nonempty))
    assert char_errors(refs, hyps_nonempty).ref_len == sum(len(r) for r in refs)
    assert word_errors(refs, hyps).errors == sum(dp_distance(r.split(), h.split()) for r, h in pairs)
    assert char_errors(refs, hyps).errors == sum(dp_distance(r, h) for r, h in pairs)
