"""Score a split through Lightning: :func:`predict` runs ``trainer.predict`` on one device in float32 and
returns what the module's ``predict_step`` gave for each batch, in loader order.

Why ``predict`` and not ``test``: what ``test_step`` returns is dropped, and what it logs is a scalar averaged
over the batches. Test metrics need every item's output: the speech model's emissions, decoded again with beam
search and the LM (and once per weight pair when tuning) for corpus WER/CER; each image's caption for corpus
BLEU/CIDEr-D, which are not means of per-batch values; and one row per item for ``predictions.jsonl``. So the
modules' ``predict_step`` returns a batch's outputs, moved to the CPU, and the caller scores the whole split.

The trainer is the same whatever the training used: one device, ``precision="32-true"`` (the test metrics do
not depend on whether training ran in bf16), ``torch.no_grad`` (not inference mode: the emissions are ordinary
tensors that the decoders may use as they like), no logger, checkpoints, progress bar or model summary, and
Lightning's ``deterministic`` / ``benchmark`` left unset, so the torch flags are those of the process, as with
the evaluation loops this replaced.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence, Set
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch.utils.data import DataLoader

__all__ = ["evaluation_trainer", "predict"]


def evaluation_trainer(device: str | torch.device = "cpu") -> pl.Trainer:
    """A :class:`~lightning.pytorch.Trainer` for ``trainer.predict`` on ``device`` alone ("cpu", "cuda",
    "cuda:N", "mps"), in float32, without gradients, logger, checkpoints, progress bar or model summary."""
    dev = torch.device(device)
    if dev.type == "cpu":
        accelerator, devices = "cpu", 1
    elif dev.type == "cuda":  # "cuda": the current device, as ``module.to("cuda")`` would use
        accelerator, devices = "cuda", [dev.index if dev.index is not None else torch.cuda.current_device()]
    elif dev.type == "mps":
        accelerator, devices = "mps", 1
    else:
        raise ValueError(f"evaluation runs on 'cpu', 'cuda[:N]' or 'mps', not {str(device)!r}")
    return pl.Trainer(
        accelerator=accelerator,
        devices=devices,
        num_nodes=1,
        precision="32-true",
        inference_mode=False,  # torch.no_grad
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        callbacks=[],
    )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Without Lightning's start-up lines (devices available, a logger tip) and its advice: the evaluation
    loaders run in the main process on purpose (tests) or with the run's workers, the speech loader's duration
    batches are all read (its sampler has no ``drop_last`` for Lightning to set), and a step returns None on
    purpose for a batch the loader could not read."""
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = rank_zero.level
    rank_zero.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*does not have many workers.*", PossibleUserWarning)
            warnings.filterwarnings("ignore", ".*custom batch sampler.*", PossibleUserWarning)
            warnings.filterwarnings("ignore", "predict returned None")  # a batch the loader could not read
            # Lightning 2.6 with torch ≥ 2.10 (its own code; once per predict since catch_warnings resets "once")
            warnings.filterwarnings("ignore", ".*LeafSpec.*")
            yield
    finally:
        rank_zero.setLevel(level)


def _check_loader(dataloader: Any) -> None:
    """One loader only: Lightning reads a list, tuple or dict as several loaders (and a list of batches as a
    list of loaders), whose outputs would come back as nested lists."""
    if isinstance(dataloader, DataLoader):
        return
    if isinstance(dataloader, (Mapping, Sequence, Set)) or not isinstance(dataloader, Iterable):
        raise TypeError(
            f"predict() runs one DataLoader (or another iterable of batches), not a {type(dataloader).__name__}:"
            " a list, tuple or dict would be read as several loaders; pass the loader itself (a list of batches:"
            " DataLoader(batches, batch_size=None, collate_fn=lambda b: b))"
        )


def predict(
    module: pl.LightningModule, dataloader: Iterable[Any], device: str | torch.device = "cpu"
) -> list[Any]:
    """``module.predict_step`` over every batch of ``dataloader`` on ``device`` (:func:`evaluation_trainer`):
    the per-batch outputs (on the CPU), in loader order, ``None`` for a batch whose step returned None.

    The module comes back on the device it was on, in the train/eval mode each of its submodules had, and
    attached to the trainer it had (a fitted module keeps its own), also when the step raises.

    Raises:
        TypeError: ``dataloader`` is a list, tuple, dict or set (Lightning would read several loaders), or not
            iterable.
    """
    _check_loader(dataloader)
    first = next(iter(module.parameters()), None)
    if first is None:
        first = next(iter(module.buffers()), None)
    home = first.device if first is not None else torch.device("cpu")
    modes = {name: m.training for name, m in module.named_modules()}
    attached = module._trainer
    try:
        with _quiet():
            outputs = evaluation_trainer(device).predict(
                module, dataloaders=dataloader, return_predictions=True
            )
    finally:
        module.to(home)
        for name, m in module.named_modules():
            m.train(modes.get(name, m.training))
        module.trainer = attached
    return list(outputs or [])
