"""Choose the beam search's LM weight and word score on the validation set.

The acoustic model runs once over the validation loader; its log-posteriors are kept and decoded again
for every (lm_weight, word_score) pair of a small grid, re-using one language model and lexicon. The pair
with the lowest validation WER wins (ties: lower CER, then the pair nearest the untuned 1.0 / 0.0). The
test set is never looked at.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from lstm_seq.audio.decoding.decode import BeamSearchDecoder, greedy_decode
from lstm_seq.audio.vocab import CharVocab
from lstm_seq.metrics.wer import char_errors, word_errors

log = logging.getLogger(__name__)


@dataclass
class Emissions:
    """Log-posteriors of a split, batch by batch, with the references.

    Attributes:
        batches: ``(log_probs (B, T, V) float32 on the CPU, lengths (B,))`` per batch.
        refs: the reference transcripts, in batch order.
    """

    batches: list[tuple[Tensor, Tensor]] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)

    def decode(self, decoder: BeamSearchDecoder) -> list[str]:
        """Every utterance decoded by ``decoder``, in the order of :attr:`refs`."""
        return [h for lp, n in self.batches for h in decoder(lp, n)]

    def greedy(self, vocab: CharVocab) -> list[str]:
        """Best-path transcripts, in the order of :attr:`refs`."""
        return [h for lp, n in self.batches for h in greedy_decode(lp, n, vocab)]


@torch.no_grad()
def collect_emissions(
    module: torch.nn.Module, loader: Iterable, device: torch.device | str = "cpu"
) -> Emissions:
    """Run ``module`` (an :class:`~lstm_seq.audio.module.ASRModule`: waveforms → (B, T, V) log-posteriors)
    over ``loader``'s :class:`~lstm_seq.audio.data.datasets.Batch` items (``None`` batches are skipped)."""
    was_training = module.training
    module.eval().to(device)
    out = Emissions()
    try:
        for batch in loader:
            if batch is None:
                continue
            batch = batch.to(device)
            log_probs, lengths = module(batch.wave, batch.wave_lengths)
            out.batches.append((log_probs.float().cpu(), lengths.cpu()))
            out.refs.extend(batch.texts)
    finally:
        module.train(was_training)
    return out


@dataclass(frozen=True)
class TuneResult:
    """The chosen pair and what every pair scored.

    Attributes:
        lm_weight, word_score: the chosen settings.
        wer, cer: their validation error rates.
        greedy_wer: validation WER of best-path decoding, for comparison.
        table: one ``{"lm_weight", "word_score", "wer", "cer"}`` row per pair tried, in grid order.
    """

    lm_weight: float
    word_score: float
    wer: float
    cer: float
    greedy_wer: float
    table: list[dict[str, float]]


def tune_beam(
    decoder: BeamSearchDecoder,
    emissions: Emissions,
    vocab: CharVocab,
    lm_weights: Sequence[float],
    word_scores: Sequence[float],
) -> TuneResult:
    """Decode ``emissions`` with every pair of ``lm_weights`` × ``word_scores`` and pick the best.

    Raises:
        ValueError: an empty grid or no validation utterances.
    """
    if not lm_weights or not word_scores:
        raise ValueError("tuning needs at least one lm_weight and one word_score")
    if not emissions.refs:
        raise ValueError("tuning needs validation utterances; the validation loader gave none")
    refs = emissions.refs
    table = []
    for lw, ws in itertools.product(lm_weights, word_scores):
        hyps = emissions.decode(decoder.with_weights(lw, ws))
        row = {
            "lm_weight": float(lw),
            "word_score": float(ws),
            "wer": word_errors(refs, hyps).rate,
            "cer": char_errors(refs, hyps).rate,
        }
        table.append(row)
        log.debug("beam tuning: %s", row)
    best = min(table, key=lambda r: (r["wer"], r["cer"], abs(r["lm_weight"] - 1.0) + abs(r["word_score"])))
    greedy_wer = word_errors(refs, emissions.greedy(vocab)).rate
    return TuneResult(best["lm_weight"], best["word_score"], best["wer"], best["cer"], greedy_wer, table)
