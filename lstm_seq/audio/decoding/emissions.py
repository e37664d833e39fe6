"""What the acoustic model emits for a split: :class:`BatchEmissions` per batch
(:meth:`~lstm_seq.audio.module.ASRModule.predict_step`), gathered by :meth:`Emissions.from_batches` into the
:class:`Emissions` that :mod:`lstm_seq.audio.decoding.evaluate` scores and :mod:`lstm_seq.audio.decoding.tune`
decodes again for every pair of weights."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from torch import Tensor

from lstm_seq.audio.decoding.decode import greedy_decode
from lstm_seq.audio.vocab import CharVocab

Decoder = Callable[[Tensor, Tensor], list[str]]


@dataclass
class BatchEmissions:
    """One batch of :meth:`ASRModule.predict_step <lstm_seq.audio.module.ASRModule.predict_step>`.

    Attributes:
        log_probs: (B, T', V) float32 log-posteriors on the CPU; lengths: (B,) valid steps, on the CPU.
        refs: the reference transcripts; paths: the audio files (B each).
        loss: the batch's mean CTC loss over its feasible utterances (None: none is feasible).
        size: utterances in the batch (the weight of ``loss``).
    """

    log_probs: Tensor
    lengths: Tensor
    refs: list[str]
    paths: list[str]
    loss: float | None
    size: int


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

    @classmethod
    def from_batches(cls, batches: Iterable[BatchEmissions | None]) -> Emissions:
        """The split of ``batches`` in their order (``None``, a batch the loader could not read, is skipped)."""
        out = cls()
        for b in batches:
            if b is None:
                continue
            if b.loss is not None:
                out.loss_sum += b.loss * b.size
                out.loss_weight += b.size
            out.batches.append((b.log_probs, b.lengths))
            out.refs.extend(b.refs)
            out.paths.extend(b.paths)
        return out

    def decode(self, decoder: Decoder) -> list[str]:
        """Every utterance decoded by ``decoder``, in the order of :attr:`refs`."""
        return [h for lp, n in self.batches for h in decoder(lp, n)]

    def greedy(self, vocab: CharVocab) -> list[str]:
        """Best-path transcripts, in the order of :attr:`refs`."""
        return [h for lp, n in self.batches for h in greedy_decode(lp, n, vocab)]

    @property
    def loss(self) -> float | None:
        return self.loss_sum / self.loss_weight if self.loss_weight else None
