"""``python -m pipelines.caption.test ckpt=PATH``: evaluate a checkpoint on the test split of ``data``
(conf/caption_test.yaml): metrics.json and predictions.jsonl; the vocabulary and image transform come from the
checkpoint. ``debug=smoke`` tests on the tiny data; ``device=cuda`` on a GPU."""

from __future__ import annotations

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig

from lstm_seq.vision import recipe
from lstm_seq.vision.module import CaptionModule
from pipelines._config import validate
from pipelines._hydra import plain, resolve_path, run_dir
from pipelines._sweep import pipeline_job
from pipelines.caption._common import corpus, set_threads


@hydra.main(version_base="1.3", config_path="../../conf", config_name="caption_test")
@pipeline_job
def main(cfg: DictConfig) -> dict:
    validate(cfg)  # values, input paths, the keys this task needs (pipelines/_config.py); before any work
    out, data = run_dir(), plain(cfg.data)
    cache_dir = resolve_path(cfg.data.cache_dir) if cfg.data.get("cache_dir") else None
    set_threads(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    scenes = corpus(cfg)
    model = CaptionModule.load(resolve_path(cfg.ckpt))
    dm = recipe.datamodule(model, scenes, data, cfg.seed, cache_dir)
    metrics, _ = recipe.evaluate(model, dm, out, data["smoke"], str(cfg.device))
    return metrics


if __name__ == "__main__":
    main()
