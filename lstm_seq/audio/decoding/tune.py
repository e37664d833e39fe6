"""Choose the beam search's LM weight and word score on the validation set.

The acoustic model runs once over the validation loader; its log-posteriors are kept and decoded again
for every (lm_weight, word_score) pair of a small grid, re-using one language model and lexicon. The pair
with the lowest validation WER wins (ties: :func:`best_pair`). The
test set is never looked at.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing as mp
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from lstm_seq.audio.decoding.decoder import BeamSearchDecoder
from lstm_seq.audio.decoding.emissions import Emissions
from lstm_seq.cpus import usable_cpus
from lstm_seq.metrics.wer import char_errors, word_errors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TuneResult:
    """The chosen pair and what every pair scored.

    Attributes:
        lm_weight, word_score: the chosen settings.
        wer, cer: their validation error rates.
        table: one ``{"lm_weight", "word_score", "wer", "cer"}`` row per pair tried, in grid order.
    """

    lm_weight: float
    word_score: float
    wer: float
    cer: float
    table: list[dict[str, float]]


def best_pair(table: Sequence[dict[str, float]]) -> dict[str, float]:
    """The row that wins: lowest WER, then lowest CER, then nearest the untuned 1.0 / 0.0 (L1), then the
    smaller LM weight and word score — so the choice never depends on the order of the grids."""
    return min(
        table,
        key=lambda r: (
            r["wer"], r["cer"], abs(r["lm_weight"] - 1.0) + abs(r["word_score"]), r["lm_weight"], r["word_score"]
        ),
    )  # fmt: skip


# what the forked tuning workers read: (decoder, emissions, grid), set only while a pool runs
_JOB: tuple[BeamSearchDecoder, Emissions, list[tuple[float, float]]] | None = None


def _score_pair(i: int) -> dict[str, float]:
    """Decode the validation emissions with pair ``i`` of the grid and score them (one tuning worker's job)."""
    assert _JOB is not None
    decoder, emissions, grid = _JOB
    lw, ws = grid[i]
    hyps = emissions.decode(decoder.with_weights(lw, ws))
    refs = emissions.refs
    return {
        "lm_weight": lw,
        "word_score": ws,
        "wer": word_errors(refs, hyps).rate,
        "cer": char_errors(refs, hyps).rate,
    }


def _score_grid(
    decoder: BeamSearchDecoder, emissions: Emissions, grid: list[tuple[float, float]], workers: int
) -> list[dict[str, float]]:
    """One row per pair, in grid order; decoded by up to ``workers`` forked processes (they inherit the
    decoder and emissions, so nothing is pickled but the rows). Each worker decodes on the CPU with one
    thread (:meth:`CTCBeamSearch.search`), so processes are what uses the cores."""
    global _JOB
    workers = min(workers, len(grid))
    _JOB = (decoder, emissions, grid)
    try:
        if workers <= 1 or "fork" not in mp.get_all_start_methods():
            return [_score_pair(i) for i in range(len(grid))]
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            return list(pool.map(_score_pair, range(len(grid))))
    finally:
        _JOB = None


def tune_beam(
    decoder: BeamSearchDecoder,
    emissions: Emissions,
    lm_weights: Sequence[float],
    word_scores: Sequence[float],
    workers: int | None = None,
) -> TuneResult:
    """Decode ``emissions`` with every pair of ``lm_weights`` × ``word_scores`` and pick the best.

    The pairs are decoded by ``workers`` processes at once (default: every usable core; 1 = in this
    process): each pair decodes exactly as alone, so the table does not depend on the number of workers.

    Raises:
        ValueError: an empty grid or no validation utterances.
    """
    if not lm_weights or not word_scores:
        raise ValueError("tuning needs at least one lm_weight and one word_score")
    if not emissions.refs:
        raise ValueError("tuning needs validation utterances; the validation loader gave none")
    grid = [(float(lw), float(ws)) for lw, ws in itertools.product(lm_weights, word_scores)]
    table = _score_grid(decoder, emissions, grid, usable_cpus() if workers is None else workers)
    for row in table:
        log.debug("beam tuning: %s", row)
    best = best_pair(table)
    return TuneResult(best["lm_weight"], best["word_score"], best["wer"], best["cer"], table)
