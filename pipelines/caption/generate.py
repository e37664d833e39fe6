"""``python -m pipelines.caption.generate ckpt=PATH image_dir=DIR``: caption every image under DIR into
captions.jsonl + captions.html (conf/caption_generate.yaml; loader settings under ``generate``)."""

from __future__ import annotations

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig

from lstm_seq.vision import recipe
from lstm_seq.vision.module import CaptionModule
from pipelines._config import validate
from pipelines._hydra import plain, resolve_path, run_dir
from pipelines._sweep import pipeline_job
from pipelines.caption._common import set_threads


@hydra.main(version_base="1.3", config_path="../../conf", config_name="caption_generate")
@pipeline_job
def main(cfg: DictConfig) -> dict:
    validate(cfg)  # values, input paths, the keys this task needs (pipelines/_config.py); before any work
    set_threads(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    model = CaptionModule.load(resolve_path(cfg.ckpt))
    return recipe.generate(
        model, resolve_path(cfg.image_dir), run_dir(), plain(cfg.generate), str(cfg.device)
    )


if __name__ == "__main__":
    main()
