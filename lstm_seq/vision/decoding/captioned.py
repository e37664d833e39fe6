"""What the captioner says about a split: :class:`CaptionedBatch` per batch
(:meth:`~lstm_seq.vision.module.CaptionModule.caption_batch`, which validation and ``predict_step`` both call),
gathered in loader order by :meth:`Captioned.from_batches` for the test metrics and predictions.jsonl."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class CaptionedBatch:
    """One evaluation batch.

    Attributes:
        ids: image ids; hyps: the decoded captions; refs: each image's reference captions (B each).
        loss: the teacher-forced cross-entropy of the batch's captions, a scalar tensor (the batch mean; on the
            model's device in validation, on the CPU from ``trainer.predict``).
    """

    ids: list[str]
    hyps: list[str]
    refs: list[list[str]]
    loss: Tensor


@dataclass
class Captioned:
    """A split's captions in loader order.

    Attributes:
        ids: image ids; hyps: the decoded captions; refs: each image's reference captions.
        loss_sum, loss_weight: Σ (batch mean cross-entropy × images) and Σ images: their ratio is the split's
            teacher-forced loss, weighted as Lightning logs it.
    """

    ids: list[str] = field(default_factory=list)
    hyps: list[str] = field(default_factory=list)
    refs: list[list[str]] = field(default_factory=list)
    loss_sum: float = 0.0
    loss_weight: int = 0

    @classmethod
    def from_batches(cls, batches: Iterable[CaptionedBatch | None]) -> Captioned:
        """The split of ``batches`` in their order (``None``, a batch without a readable image, is skipped)."""
        out = cls()
        for b in batches:
            if b is None:
                continue
            out.loss_sum += float(b.loss) * len(b.ids)
            out.loss_weight += len(b.ids)
            out.hyps.extend(b.hyps)
            out.refs.extend(b.refs)
            out.ids.extend(b.ids)
        return out

    @property
    def loss(self) -> float | None:
        return self.loss_sum / self.loss_weight if self.loss_weight else None
