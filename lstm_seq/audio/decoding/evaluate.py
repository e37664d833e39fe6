"""Run the acoustic model over a split once, then score decoders on what it emitted.

:func:`collect_emissions` keeps every utterance's log-posteriors (with the references, paths and the CTC loss);
:func:`evaluate` decodes them greedily and, when given a beam-search decoder, with it too, and returns the
metrics and one prediction row per utterance. Tuning (:mod:`lstm_seq.audio.decoding.tune`) decodes the same
emissions again for every pair of weights, so the model runs once per split.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from lstm_seq.audio.decoding.decode import greedy_decode
from lstm_seq.audio.vocab import CharVocab
from lstm_seq.metrics.wer import char_errors, word_errors

Decoder = Callable[[Tensor, Tensor], list[str]]


@dataclass
class Emissions:
    """Log-posteriors of a split, batch by batch, with the references.

    Attributes:
        batches: ``(log_probs (B, T, V) float32 on the CPU, lengths (B,))`` per batch.
        refs: the reference transcripts, in batch order.
        paths: the audio files, in batch order.
        loss_sum, loss_weight: Σ (batch mean CTC loss × batch size) and Σ batch size over the batches with a
            feasible utterance: their ratio is the split's loss, weighted as Lightning logs it.
    """

    batches: list[tuple[Tensor, Tensor]] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    loss_sum: float = 0.0
    loss_weight: int = 0

    def decode(self, decoder: Decoder) -> list[str]:
        """Every utterance decoded by ``decoder``, in the order of :attr:`refs`."""
        return [h for lp, n in self.batches for h in decoder(lp, n)]

    def greedy(self, vocab: CharVocab) -> list[str]:
        """Best-path transcripts, in the order of :attr:`refs`."""
        return [h for lp, n in self.batches for h in greedy_decode(lp, n, vocab)]

    @property
    def loss(self) -> float | None:
        return self.loss_sum / self.loss_weight if self.loss_weight else None


@torch.no_grad()
def collect_emissions(module: Any, loader: Iterable, device: torch.device | str = "cpu") -> Emissions:
    """Run ``module`` (an :class:`~lstm_seq.audio.module.ASRModule`: waveforms → (B, T, V) log-posteriors and
    its CTC loss) in eval mode over ``loader``'s :class:`~lstm_seq.audio.data.datasets.Batch` items (``None``
    batches are skipped)."""
    was_training = module.training
    module.eval().to(device)
    out = Emissions()
    try:
        for batch in loader:
            if batch is None:
                continue
            batch = batch.to(device)
            log_probs, lengths = module(batch.wave, batch.wave_lengths)
            loss = module.ctc_loss(log_probs, lengths, batch, count_dropped=False)
            if loss is not None:
                out.loss_sum += float(loss) * len(batch)
                out.loss_weight += len(batch)
            out.batches.append((log_probs.float().cpu(), lengths.cpu()))
            out.refs.extend(batch.texts)
            out.paths.extend(batch.paths)
    finally:
        module.train(was_training)
    return out


def evaluate(
    emissions: Emissions, vocab: CharVocab, beam: Decoder | None = None, stage: str = "test"
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """WER/CER of greedy decoding and, with ``beam``, of beam search on ``emissions``.

    Returns:
        metrics: ``<stage>/wer``, ``<stage>/cer`` (beam search's when it ran, else greedy's),
            ``<stage>/wer_greedy``, ``<stage>/cer_greedy``, ``<stage>/wer_beam``, ``<stage>/cer_beam``,
            ``<stage>/loss`` and ``<stage>/utterances``;
        predictions: ``{"path", "ref", "greedy"[, "beam"]}`` per utterance, in loader order.
    """
    refs = emissions.refs
    hyps = {"greedy": emissions.greedy(vocab)}
    if beam is not None:
        hyps["beam"] = emissions.decode(beam)
    metrics: dict[str, float] = {}
    for name, h in hyps.items():
        metrics[f"{stage}/wer_{name}"] = word_errors(refs, h).rate
        metrics[f"{stage}/cer_{name}"] = char_errors(refs, h).rate
    main = "beam" if beam is not None else "greedy"
    metrics[f"{stage}/wer"] = metrics[f"{stage}/wer_{main}"]
    metrics[f"{stage}/cer"] = metrics[f"{stage}/cer_{main}"]
    if emissions.loss is not None:
        metrics[f"{stage}/loss"] = emissions.loss
    metrics[f"{stage}/utterances"] = len(refs)
    predictions = [
        {"path": p, "ref": r, **{name: h[i] for name, h in hyps.items()}}
        for i, (p, r) in enumerate(zip(emissions.paths, refs, strict=True))
    ]
    return metrics, predictions
