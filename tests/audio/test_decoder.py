"""build_decoder, the one factory of beam-search decoders: an LM from a file or from memory, the same decoding."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lstm_seq.audio.decoding.decode import BeamConfig
from lstm_seq.audio.decoding.decoder import build_decoder
from lstm_seq.audio.decoding.lm import estimate, write_arpa
from lstm_seq.audio.decoding.ngram import NGramLM, NGramTable
from tests.audio.test_ctc_beam import TEXTS, V, batch, emissions

WORDS = sorted({w for t in TEXTS for w in t.split()})


def test_the_estimate_is_a_table_and_its_arpa_text_a_rounded_copy() -> None:
    """The n-gram estimate goes into a table at full precision; ARPA text is written from it with six
    decimals, and reading that text back gives the same n-grams, each number within the rounding."""
    table = estimate(TEXTS, order=3)
    back = NGramTable.from_arpa(table.to_arpa(), "lm.arpa")
    assert back.order == table.order == 3
    for ours, theirs in zip(table.grams, back.grams, strict=True):
        assert list(ours) == list(theirs)  # the same n-grams, in the same order
        for gram, (lp, bow) in ours.items():
            assert theirs[gram] == pytest.approx((lp, bow), abs=5e-7)
    assert back.to_arpa() == table.to_arpa()  # the text is a fixed point: export → import → export
    assert {"<s>", "</s>", "<unk>", "door"} <= set(table.unigrams())
    assert any(lp != round(lp, 6) for g in table.grams for lp, _ in g.values())  # really more precise


def test_a_table_and_its_arpa_file_decode_alike(tmp_path: Path) -> None:
    """lm= an ARPA file or the table in memory: the same transcripts and n-best scores to within the file's
    rounding; the torch backend writes no file for the table."""
    table = estimate(TEXTS, order=3)
    arpa = write_arpa(tmp_path / "lm.arpa", TEXTS, order=3)
    cfg = BeamConfig(beam_size=12, lm_weight=2.0, word_score=0.5)
    from_table = build_decoder(V, cfg, lexicon=WORDS, lm=table, work_dir=tmp_path / "work")
    from_file = build_decoder(V, cfg, lexicon=WORDS, lm=arpa)
    torch.manual_seed(0)
    noisy = [(emissions(t) + 2.0 * torch.randn(len(emissions(t)), len(V))).log_softmax(-1) for t in TEXTS * 2]
    x, n = batch(*noisy)
    assert from_table(x, n) == from_file(x, n)
    for a, b in zip(from_table.nbest(x, n, 3), from_file.nbest(x, n, 3), strict=True):
        assert [t for t, _ in a] == [t for t, _ in b]
        assert [s for _, s in a] == pytest.approx([s for _, s in b], abs=1e-4)
    assert not (tmp_path / "work").exists()


def test_the_table_scores_by_the_backoff_rule() -> None:
    """NGramLM built from the table: a listed trigram is its own number; an unlisted one backs off through
    the bigram history's weight to the bigram (the rule of the ARPA format, here on the table's numbers)."""
    table = estimate(TEXTS, order=3)
    lm = NGramLM(table)
    p1, p2, p3 = ({g: lp for g, (lp, _) in table.grams[k].items()} for k in range(3))
    bow2 = {g: b for g, (_, b) in table.grams[1].items()}

    def score(hist: list[str], word: str) -> float:
        ids = torch.tensor([[lm.word_id(w) for w in hist]])
        ctx = [(a[..., None], b[..., None]) for a, b in lm.context_ids(ids)]
        return float(lm.score(ctx, torch.tensor([[lm.word_id(word)]]))[0, 0])

    assert score(["turn", "left"], "at") == pytest.approx(p3[("turn", "left", "at")], abs=1e-5)
    assert ("red", "door", "at") not in p3 and ("door", "at") not in p2  # "door" ends its sentences
    bow1 = {g: b for g, (_, b) in table.grams[0].items()}
    want = bow2[("red", "door")] + bow1[("door",)] + p1[("at",)]
    assert score(["red", "door"], "at") == pytest.approx(want, abs=1e-5)


def test_with_weights_reuses_the_lm_and_decodes_as_a_decoder_built_with_those_weights() -> None:
    table = estimate(TEXTS, order=3)
    base = build_decoder(V, BeamConfig(beam_size=8), lexicon=WORDS, lm=table)
    torch.manual_seed(1)
    noisy = [(emissions(t) + 2.5 * torch.randn(len(emissions(t)), len(V))).log_softmax(-1) for t in TEXTS]
    x, n = batch(*noisy)
    for lw, ws in ((0.0, 0.0), (3.0, -1.0)):
        direct = build_decoder(
            V, BeamConfig(beam_size=8, lm_weight=lw, word_score=ws), lexicon=WORDS, lm=table
        )
        reused = base.with_weights(lw, ws)
        assert reused.cfg == direct.cfg and reused(x, n) == direct(x, n)


def test_a_lexicon_decoder_needs_its_words() -> None:
    with pytest.raises(ValueError, match=r"decode\.lexicon=true.*lexicon="):
        build_decoder(V, BeamConfig(), lexicon=None, lm=estimate(TEXTS))
    free = build_decoder(V, BeamConfig(lexicon=False, lm_order=0))  # free spelling needs none
    assert free(*batch(emissions("zebra"))) == ["zebra"]
