"""Glue shared by the Hydra entry points: the one instantiate helper, run-directory paths,
trainer/logger construction and metrics.json.

Only ``pipelines/`` imports Hydra or OmegaConf; the library (``lstm_seq``) never does.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate as _hydra_instantiate
from omegaconf import DictConfig, OmegaConf


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
    trainer_cfg: DictConfig, out_dir: Path, callbacks: list[Any], loggers: list[Any] | bool
) -> Any:
    """Build the Lightning Trainer; ``precision: auto`` means bf16-mixed on a GPU and 32-true on CPU."""
    cfg = OmegaConf.to_container(trainer_cfg, resolve=True)
    assert isinstance(cfg, dict)
    if cfg.get("precision", "auto") == "auto":
        cfg["precision"] = "bf16-mixed" if str(cfg.get("accelerator")) in ("gpu", "cuda") else "32-true"
    cfg.setdefault("default_root_dir", str(out_dir))
    return instantiate(cfg, callbacks=callbacks, logger=loggers)


def _json_safe(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON through a temporary file in the same directory + rename, so a reader never sees a
    half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_metrics(out_dir: Path, metrics: Mapping[str, Any]) -> Path:
    """Merge ``metrics`` into ``<out_dir>/metrics.json`` (keys like ``test/wer``) and return its path."""
    path = out_dir / "metrics.json"
    current: dict[str, Any] = {}
    if path.exists():
        current = json.loads(path.read_text())
    current.update({k: _json_safe(v) for k, v in metrics.items()})
    write_json_atomic(path, current)
    return path
