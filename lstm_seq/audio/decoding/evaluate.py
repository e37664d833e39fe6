"""Run the acoustic model over a split once, then score decoders on what it emitted.

:func:`collect_emissions` keeps every utterance's log-posteriors (with the references, paths and the CTC loss):
the module's ``predict_step`` (:class:`~lstm_seq.audio.decoding.emissions.BatchEmissions`) through
``trainer.predict`` (:func:`lstm_seq.training.evaluation.predict`: one device, float32), gathered by
:meth:`Emissions.from_batches`. :func:`evaluate` decodes them greedily and, when given a beam-search decoder,
with it too, and returns the metrics and one prediction row per utterance. Tuning
(:mod:`lstm_seq.audio.decoding.tune`) decodes the same emissions again for every pair of weights, so the model
runs once per split.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from lstm_seq.audio.decoding.emissions import BatchEmissions, Decoder, Emissions
from lstm_seq.audio.vocab import CharVocab
from lstm_seq.metrics.wer import char_errors, word_errors
from lstm_seq.training.evaluation import predict

__all__ = ["BatchEmissions", "Decoder", "Emissions", "collect_emissions", "evaluate"]


def collect_emissions(module: Any, loader: Iterable, device: torch.device | str = "cpu") -> Emissions:
    """Run ``module`` (an :class:`~lstm_seq.audio.module.ASRModule`: waveforms → (B, T, V) log-posteriors and
    its CTC loss) in eval mode on ``device`` over ``loader``'s :class:`~lstm_seq.audio.data.datasets.Batch`
    items (``None`` batches are skipped); the module comes back on its device and in its mode."""
    return Emissions.from_batches(predict(module, loader, device))


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
