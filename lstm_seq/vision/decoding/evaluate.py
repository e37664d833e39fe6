"""Caption a split once and return what was said: ids, hypotheses, references and the teacher-forced loss.

The test run scores these (:func:`lstm_seq.vision.recipe.evaluate`); nothing is read back off the module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from lstm_seq.vision.module import CaptionModule


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

    @property
    def loss(self) -> float | None:
        return self.loss_sum / self.loss_weight if self.loss_weight else None


@torch.no_grad()
def caption_split(
    model: CaptionModule, loader: Iterable[dict[str, Any]], beam_size: int | None = None, device: str = "cpu"
) -> Captioned:
    """Run ``model`` in eval mode over ``loader`` (batches of :func:`~lstm_seq.vision.data.datasets.collate_captions`):
    beam search with ``beam_size`` (None: the model's own), and the cross-entropy of the first reference."""
    was_training = model.training
    model.eval().to(device)
    out = Captioned()
    try:
        for batch in loader:
            if not batch["ids"]:
                continue
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            ce, hyps = model.caption_batch(batch, beam_size)
            out.loss_sum += float(ce) * len(batch["ids"])
            out.loss_weight += len(batch["ids"])
            out.hyps.extend(hyps)
            out.refs.extend(batch["refs"])
            out.ids.extend(batch["ids"])
    finally:
        model.train(was_training)
    return out
