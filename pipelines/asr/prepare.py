"""``python -m pipelines.asr.prepare data=librispeech data.root=DIR``: import a public corpus (librispeech,
ljspeech, commonvoice) into the manifests of ``data.manifest_dir`` (conf/asr_prepare.yaml); training on them is
then ``python -m pipelines.asr data=librispeech``."""

from __future__ import annotations

from typing import Any

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig

from lstm_seq.audio import recipe
from pipelines._config import validate
from pipelines._hydra import resolve_path, run_dir
from pipelines._sweep import pipeline_job


@hydra.main(version_base="1.3", config_path="../../conf", config_name="asr_prepare")
@pipeline_job
def main(cfg: DictConfig) -> dict[str, Any]:
    validate(cfg)  # values, input paths, data.root (pipelines/_config.py); before any work
    pl.seed_everything(cfg.seed, workers=True)
    extra = {k: cfg.data[k] for k in ("val_fraction", "test_fraction")} if cfg.data.name == "ljspeech" else {}
    root, manifest_dir = resolve_path(cfg.data.root), resolve_path(cfg.data.manifest_dir)
    return recipe.prepare(cfg.data.name, root, manifest_dir, run_dir(), **extra)


if __name__ == "__main__":
    main()
