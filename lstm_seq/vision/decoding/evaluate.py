"""Caption a split once and return what was said: ids, hypotheses, references and the teacher-forced loss.

:func:`caption_split` runs the module's ``predict_step`` (:meth:`~lstm_seq.vision.module.CaptionModule.caption_batch`,
the step validation uses too) through ``trainer.predict`` (:func:`lstm_seq.training.evaluation.predict`: one
device, float32) and gathers the batches with :meth:`Captioned.from_batches`. The test run scores these
(:func:`lstm_seq.vision.recipe.evaluate`); nothing is read back off the module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lstm_seq.training.evaluation import predict
from lstm_seq.vision.decoding.captioned import Captioned, CaptionedBatch
from lstm_seq.vision.module import CaptionModule

__all__ = ["Captioned", "CaptionedBatch", "caption_split"]


def caption_split(
    model: CaptionModule, loader: Iterable[dict[str, Any]], beam_size: int | None = None, device: str = "cpu"
) -> Captioned:
    """Run ``model`` in eval mode on ``device`` over ``loader`` (batches of
    :func:`~lstm_seq.vision.data.datasets.collate_captions`): beam search with ``beam_size`` (None: the model's
    :attr:`~lstm_seq.vision.module.CaptionModule.predict_beam_size`, by default its own ``beam_size``), and the
    teacher-forced cross-entropy. The model comes back on its device, in its mode, with its beam size."""
    kept = model.predict_beam_size
    if beam_size is not None:
        model.predict_beam_size = beam_size
    try:
        return Captioned.from_batches(predict(model, loader, device))
    finally:
        model.predict_beam_size = kept
