"""A word n-gram language model estimated from transcripts, straight into an :class:`NGramTable`.

Interpolated absolute discounting (discount ``D`` per order), converted to the back-off form that
the ARPA format (and KenLM, which reads it) expects::

    p(w | h) = max(c(h w) − D, 0) / c(h) + γ(h) · p(w | h⁻)      γ(h) = D · N₁₊(h •) / c(h)

where ``h⁻`` drops the oldest word of ``h``. For an n-gram seen in training the table holds
``log10 p(w | h)``; each history gets the back-off weight
``bow(h) = (1 − Σ_seen p(w | h)) / (1 − Σ_seen p(w | h⁻))``. Unigrams are add-one smoothed over the
vocabulary plus ``<unk>`` so every word has a probability.

Beam search builds its tensors from the table itself (:class:`~lstm_seq.audio.decoding.ngram.NGramLM`), at full
precision; ARPA text (:func:`estimate_arpa`, six decimals) is written only for a file someone asks for.
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from lstm_seq.audio.decoding.ngram import BOS, EOS, UNK, NGramTable


def _counts(sentences: list[list[str]], order: int) -> list[Counter[tuple[str, ...]]]:
    counts: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order + 1)]
    for words in sentences:
        seq = [BOS, *words, EOS]
        for n in range(1, order + 1):
            for i in range(len(seq) - n + 1):
                gram = tuple(seq[i : i + n])
                if n == 1 and gram == (BOS,):
                    continue
                counts[n][gram] += 1
    return counts


def estimate(texts: Iterable[str], order: int = 3, discount: float = 0.7) -> NGramTable:
    """The ``order``-gram model of ``texts`` (whitespace-split words)."""
    sentences = [t.split() for t in texts if t.strip()]
    if not sentences:
        raise ValueError("cannot estimate a language model from no text")
    if order < 1:
        raise ValueError(f"order must be ≥ 1, got {order}")
    counts = _counts(sentences, order)
    # unigrams: add-one over vocabulary ∪ {</s>, <unk>}
    vocab = sorted({w for (w,) in counts[1]} | {UNK})
    total = sum(counts[1].values()) + len(vocab)
    prob: list[dict[tuple[str, ...], float]] = [{} for _ in range(order + 1)]
    prob[1] = {(w,): (counts[1][(w,)] + 1) / total for w in vocab}
    bows: list[dict[tuple[str, ...], float]] = [{} for _ in range(order + 1)]
    for n in range(2, order + 1):
        ctx_total: Counter[tuple[str, ...]] = Counter()
        ctx_types: Counter[tuple[str, ...]] = Counter()
        followers: dict[tuple[str, ...], list[tuple[str, ...]]] = defaultdict(list)
        for gram, c in counts[n].items():
            ctx_total[gram[:-1]] += c
            ctx_types[gram[:-1]] += 1
            followers[gram[:-1]].append(gram)
        for ctx, grams in followers.items():
            gamma = discount * ctx_types[ctx] / ctx_total[ctx]
            for gram in grams:
                lower = _lookup(prob, bows, gram[1:])
                prob[n][gram] = max(counts[n][gram] - discount, 0) / ctx_total[ctx] + gamma * lower
            seen_hi = sum(prob[n][g] for g in grams)
            seen_lo = sum(_lookup(prob, bows, g[1:]) for g in grams)
            bows[n - 1][ctx] = max(1e-12, 1.0 - seen_hi) / max(1e-12, 1.0 - seen_lo)

    def log_bow(n: int, gram: tuple[str, ...]) -> float:  # 0: the highest order, or never a history
        return math.log10(bows[n].get(gram, 1.0)) if n < order else 0.0

    # <s> starts every history and is never predicted: log10 p = -99, as in ARPA files
    grams: list[dict[tuple[str, ...], tuple[float, float]]] = [{(BOS,): (-99.0, log_bow(1, (BOS,)))}]
    grams += [{} for _ in range(order - 1)]
    for n in range(1, order + 1):
        grams[n - 1].update((g, (math.log10(p), log_bow(n, g))) for g, p in sorted(prob[n].items()))
    return NGramTable(grams)


def estimate_arpa(texts: Iterable[str], order: int = 3, discount: float = 0.7) -> str:
    """The ARPA text of :func:`estimate` (for a file: an export, KenLM, the flashlight backend)."""
    return estimate(texts, order, discount).to_arpa()


def _lookup(
    prob: list[dict[tuple[str, ...], float]], bows: list[dict[tuple[str, ...], float]], gram: tuple[str, ...]
) -> float:
    """p(w | h) of the back-off model built so far (orders < len(gram) + 1)."""
    n = len(gram)
    if gram in prob[n]:
        return prob[n][gram]
    if n == 1:
        return prob[1][(UNK,)]
    return bows[n - 1].get(gram[:-1], 1.0) * _lookup(prob, bows, gram[1:])


def write_arpa(
    path: str | os.PathLike[str], texts: Iterable[str], order: int = 3, discount: float = 0.7
) -> Path:
    """Estimate and write an ARPA file; returns its path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(estimate_arpa(texts, order, discount))
    return p
