"""What the ASR entry points share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from lstm_seq.audio import recipe
from pipelines._hydra import plain, resolve_path


def manifests(cfg: DictConfig, out: Path) -> dict[str, Path]:
    """The train/val/test manifests of ``cfg.data`` (building the synthetic corpus if needed)."""
    d = cfg.data
    if d.name == "speech_synth":
        return recipe.synthetic_manifests(plain(d), resolve_path(cfg.paths.data_dir), d.synth_workers)
    paths = {s: resolve_path(d[f"{s}_manifest"]) for s in recipe.SPLITS}
    return recipe.smoke_manifests(paths, out, d.smoke_utterances) if d.smoke else paths


def decode_settings(cfg: DictConfig) -> dict[str, Any]:
    """``cfg.decode`` as plain values, ``lm_path`` resolved against the launch directory."""
    decode = plain(cfg.decode)
    if decode.get("lm_path"):
        decode["lm_path"] = str(resolve_path(decode["lm_path"]))
    return decode
