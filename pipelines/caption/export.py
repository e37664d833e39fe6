"""``python -m pipelines.caption.export ckpt=PATH``: ONNX encoder + decoder step + metadata.json into
<run dir>/export (conf/caption_export.yaml)."""

from __future__ import annotations

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig

from lstm_seq.vision import recipe
from lstm_seq.vision.module import CaptionModule
from pipelines._config import validate
from pipelines._hydra import resolve_path, run_dir
from pipelines._sweep import pipeline_job
from pipelines.caption._common import set_threads


@hydra.main(version_base="1.3", config_path="../../conf", config_name="caption_export")
@pipeline_job
def main(cfg: DictConfig) -> dict:
    validate(cfg)  # values, input paths, the keys this task needs (pipelines/_config.py); before any work
    set_threads(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    return recipe.export(CaptionModule.load(resolve_path(cfg.ckpt)), run_dir())


if __name__ == "__main__":
    main()
