"""BLEU and CIDEr-D against pycocoevalcap (the coco-caption code) and sacrebleu."""

from __future__ import annotations

import random

import pytest
import sacrebleu

from lstm_seq.metrics.caption import bleu, caption_metrics, cider_d
from lstm_seq.text import tokenize

WORDS = "a the red blue green circle square star left of right above big small there is and".split()


def _corpus(seed: int, n: int = 40) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    hyps = [" ".join(rng.choices(WORDS, k=rng.randint(1, 10))) for _ in range(n)]
    refs = [
        [" ".join(rng.choices(WORDS, k=rng.randint(2, 10))) for _ in range(rng.randint(1, 5))]
        for _ in range(n)
    ]
    return hyps, refs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_pycocoevalcap(seed: int) -> None:
    pytest.importorskip("pycocoevalcap")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    hyps, refs = _corpus(seed)
    gts = {i: [" ".join(tokenize(r)) for r in rs] for i, rs in enumerate(refs)}
    res = {i: [" ".join(tokenize(h))] for i, h in enumerate(hyps)}
    ref_bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    assert bleu(hyps, refs) == pytest.approx(ref_bleu, rel=1e-9, abs=1e-12)
    ref_cider, _ = Cider().compute_score(gts, res)
    assert cider_d(hyps, refs) == pytest.approx(ref_cider, rel=1e-9)


def test_bleu4_matches_sacrebleu_with_one_reference() -> None:
    rng = random.Random(3)
    refs = [rng.choices(WORDS[:8], k=rng.randint(4, 12)) for _ in range(60)]
    hyps = [
        " ".join(w if rng.random() < 0.8 else rng.choice(WORDS) for w in r[: rng.randint(3, len(r) + 1)])
        for r in refs
    ]
    refs = [" ".join(r) for r in refs]
    sb = sacrebleu.corpus_bleu(hyps, [refs], tokenize="none", smooth_method="none")
    ours = bleu(hyps, [[r] for r in refs])[3]
    assert 0.05 < ours < 0.95
    assert ours * 100 == pytest.approx(sb.score, rel=1e-6)


def test_perfect_and_disjoint_captions() -> None:
    refs = [
        ["a small red circle left of a blue square", "there is a red circle"],
        ["a big green star", "one green star"],
    ]
    perfect = caption_metrics([refs[0][0], refs[1][0]], refs)
    assert perfect["bleu4"] == pytest.approx(1.0)
    assert perfect["cider"] > 1.0
    wrong = caption_metrics(["zebra zebra", "giraffe"], refs)
    assert wrong["bleu1"] < 1e-6 and wrong["cider"] == 0.0


def test_mismatched_inputs_raise() -> None:
    with pytest.raises(ValueError, match="reference sets"):
        bleu(["a"], [])
    with pytest.raises(ValueError, match="no reference"):
        cider_d(["a"], [[]])
