"""Crash-safe checkpoint files: atomic writes and code-free loading.

Writing: the checkpoint goes to a temporary file in the *same* directory, is flushed and fsynced, then
``os.replace``d over the target and the directory entry is fsynced. A kill at any moment leaves either the
previous complete file or the new complete file under the final name, never a truncated one (rename within
one file system is atomic on POSIX). Stray ``.<name>.*.tmp`` files of a killed writer are harmless.

Loading: ``torch.load(weights_only=True)`` only rebuilds tensors and plain containers, so a checkpoint file
can never run code. Every failure (missing, truncated, not a PyTorch file, unsafe/foreign pickle, not a
Lightning checkpoint) raises :class:`CheckpointError` with the path in the message.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lstm_seq.atomic import write_atomic

__all__ = ["AtomicCheckpointIO", "CheckpointError", "load_checkpoint_file", "save_atomic"]


class CheckpointError(ValueError):
    """A checkpoint file cannot be used; the message names the file and says why."""


def save_atomic(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save(obj)`` to ``path`` through :func:`lstm_seq.atomic.write_atomic`."""
    write_atomic(path, lambda fh: torch.save(obj, fh))


def load_checkpoint_file(
    path: str | os.PathLike[str], map_location: Any = "cpu", require_state_dict: bool = True
) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``.

    Args:
        path: the file.
        map_location: as in :func:`torch.load`.
        require_state_dict: also require a Lightning checkpoint (a dict with ``state_dict``).

    Raises:
        CheckpointError: naming ``path``: not found, truncated/not a PyTorch file, holds objects other than
            tensors and plain containers (a foreign or unsafe file), or not a Lightning checkpoint.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint: it holds objects other than tensors and plain "
            f"containers, which are refused so that loading cannot run code ({first})"
        ) from exc
    except Exception as exc:
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (truncated or not a PyTorch file: "
            f"{type(exc).__name__}: {exc})"
        ) from exc
    if require_state_dict and (not isinstance(ckpt, dict) or "state_dict" not in ckpt):
        raise CheckpointError(f"{path} is not a Lightning checkpoint (no 'state_dict' entry)")
    return ckpt


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning ``CheckpointIO`` plugin: :func:`save_atomic` for every save, :func:`load_checkpoint_file`
    for every load (resume, ``trainer.test(ckpt_path=...)``); ``weights_only`` is always True."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike[str], storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not take storage_options")
        save_atomic(checkpoint, path)

    def load_checkpoint(
        self,
        path: str | os.PathLike[str],
        map_location: Callable[..., Any] | Any | None = None,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        return load_checkpoint_file(path, map_location if map_location is not None else "cpu")
