"""``python -m pipelines.asr.export ckpt=PATH``: ONNX files of the acoustic model + metadata.json into
<run dir>/export (conf/asr_export.yaml)."""

from __future__ import annotations

from typing import Any

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig

from lstm_seq.audio import recipe
from lstm_seq.audio.module import ASRModule
from pipelines._config import validate
from pipelines._hydra import resolve_path, run_dir
from pipelines._sweep import pipeline_job


@hydra.main(version_base="1.3", config_path="../../conf", config_name="asr_export")
@pipeline_job
def main(cfg: DictConfig) -> dict[str, Any]:
    validate(cfg)  # values, input paths, the keys this task needs (pipelines/_config.py); before any work
    pl.seed_everything(cfg.seed, workers=True)
    return recipe.export(ASRModule.load(resolve_path(cfg.ckpt)), run_dir())


if __name__ == "__main__":
    main()
