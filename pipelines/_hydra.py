"""Glue shared by the Hydra entry points: the one instantiate helper, run-directory paths,
trainer/logger construction and metrics.json.

Only ``pipelines/`` imports Hydra or OmegaConf; the library (``lstm_seq``) never does.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate as _hydra_instantiate
from omegaconf import DictConfig, OmegaConf

from lstm_seq.atomic import write_atomic
from lstm_seq.training import AtomicCheckpointIO, fault_tolerance_callbacks


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key."""


def instantiate(node: Any, **kwargs: Any) -> Any:
    """Instantiate a ``_target_`` config node; an import or constructor failure is re-raised with its
    real cause in the message instead of Hydra's generic "Error locating target"."""
    try:
        return _hydra_instantiate(node, **kwargs)
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        target = node.get("_target_", "?") if isinstance(node, Mapping | DictConfig) else "?"
        raise ConfigError(f"cannot build {target}: {type(cause).__name__}: {cause}") from cause


def run_dir() -> Path:
    """The current Hydra run directory (``hydra.runtime.output_dir``); the cwd outside Hydra."""
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path.cwd()


def resolve_path(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Path:
    """Resolve a user path against the launch directory (Hydra does not chdir)."""
    p = Path(os.path.expanduser(str(path)))
    if p.is_absolute():
        return p
    base = Path(root) if root is not None else Path.cwd()
    if root is None and HydraConfig.initialized():
        base = Path(HydraConfig.get().runtime.cwd)
    return (base / p).resolve()


def make_loggers(logger_cfg: DictConfig | None, out_dir: Path) -> list[Any]:
    """Build every logger in the ``logger`` group with ``save_dir`` = the run directory."""
    if not logger_cfg:
        return []
    return [instantiate(node, save_dir=str(out_dir)) for node in logger_cfg.values() if node is not None]


def make_trainer(
    trainer_cfg: DictConfig,
    out_dir: Path,
    callbacks: list[Any],
    loggers: list[Any] | bool,
    resilience: DictConfig | Mapping[str, Any] | None = None,
    single_device: bool = False,
) -> Any:
    """Build the Lightning Trainer; ``precision: auto`` means bf16-mixed on a GPU and 32-true on CPU.

    Every trainer writes checkpoints atomically and loads them with ``weights_only=True``
    (:class:`~lstm_seq.training.AtomicCheckpointIO`). ``use_distributed_sampler`` defaults to False: the
    training samplers shard themselves over DDP ranks (a DistributedSampler would wrap the bucketing batch
    sampler wrongly and pad the data with repeated samples). With ``resilience`` (the config node of that
    name) the fault-tolerance callbacks are added (mid-epoch ``last.ckpt``, exact resume, non-finite batch
    skipping); ``single_device`` builds a one-process trainer (testing after a DDP fit, on rank 0).
    """
    cfg = OmegaConf.to_container(trainer_cfg, resolve=True)
    assert isinstance(cfg, dict)
    if cfg.get("precision", "auto") == "auto":
        cfg["precision"] = "bf16-mixed" if str(cfg.get("accelerator")) in ("gpu", "cuda") else "32-true"
    cfg.setdefault("default_root_dir", str(out_dir))
    cfg.setdefault("use_distributed_sampler", False)
    if single_device:
        cfg.update(devices=1, num_nodes=1, strategy="auto")
    callbacks = list(callbacks)
    if resilience is not None:
        res = resilience
        if isinstance(resilience, DictConfig):
            res = OmegaConf.to_container(resilience, resolve=True)
        callbacks += fault_tolerance_callbacks(
            out_dir / "checkpoints",
            checkpoint_every_n_steps=res.get("checkpoint_every_n_steps"),
            max_consecutive_bad_batches=res.get("max_consecutive_bad_batches"),
        )
    return instantiate(cfg, callbacks=callbacks, logger=loggers, plugins=[AtomicCheckpointIO()])


def _json_safe(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class OutputError(OSError):
    """An output file cannot be written (read-only or full file system, a folder that is a file, …); the
    message names the file and says whether an earlier version of it is still intact."""


def _output_error(path: Path, exc: OSError) -> OutputError:
    kept = "the previous file is unchanged" if path.is_file() else "nothing was written"
    err = OutputError(f"cannot write {path}: {exc.strerror or exc} ({kept})")
    err.errno = exc.errno
    return err


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) with :func:`lstm_seq.atomic.write_atomic`: a reader never sees a half-written
    file and a failed write (disk full, read-only) leaves the previous file intact.

    Raises:
        OutputError: the file cannot be written; names it.
    """
    try:
        write_atomic(path, lambda fh: fh.write(text.encode("utf-8")))
    except OSError as exc:
        raise _output_error(path, exc) from exc


def write_json_atomic(path: Path, payload: Any) -> None:
    """:func:`write_text_atomic` of ``payload`` as indented JSON with sorted keys."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def write_jsonl_atomic(path: Path, rows: Iterable[Any]) -> None:
    """:func:`write_text_atomic` of one JSON object per line."""
    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def write_metrics(out_dir: Path, metrics: Mapping[str, Any]) -> Path:
    """Merge ``metrics`` into ``<out_dir>/metrics.json`` (keys like ``test/wer``) and return its path."""
    path = out_dir / "metrics.json"
    current: dict[str, Any] = {}
    if path.exists():
        current = json.loads(path.read_text())
    current.update({k: _json_safe(v) for k, v in metrics.items()})
    write_json_atomic(path, current)
    return path
