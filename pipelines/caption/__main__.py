"""``python -m pipelines.caption``: train on ``data``, then test the best checkpoint (conf/caption.yaml). The
other tasks are entry points of their own (pipelines/caption/__init__.py lists the commands)."""

from __future__ import annotations

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig, OmegaConf

from lstm_seq.outputs import write_json_atomic, write_metrics
from lstm_seq.vision import recipe
from lstm_seq.vision.module import CaptionModule
from pipelines._config import TASKS, validate
from pipelines._hydra import fit, plain, refuse_mode, resolve_path, run_dir
from pipelines._sweep import pipeline_job
from pipelines.caption._common import corpus, set_threads


@hydra.main(version_base="1.3", config_path="../../conf", config_name="caption")
@pipeline_job  # records the job's status; returns objective.metric for sweepers
def main(cfg: DictConfig) -> dict:
    validate(cfg)  # values, input paths, the keys this task needs (pipelines/_config.py); before any work
    out, data = run_dir(), plain(cfg.data)
    cache_dir = resolve_path(cfg.data.cache_dir) if cfg.data.get("cache_dir") else None
    set_threads(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    device = "cuda" if str(cfg.trainer.accelerator) in ("gpu", "cuda") else "cpu"
    scenes = corpus(cfg)
    model = recipe.build_model(
        scenes, data, plain(cfg.encoder), plain(cfg.decoder), plain(cfg.model), plain(cfg.optim)
    )
    dm = recipe.datamodule(model, scenes, data, cfg.seed, cache_dir)
    recipe.check_inputs(dm)  # every split the run needs, the test one too, before the first step
    fitted = fit(cfg, model, out, "val/cider", "max", datamodule=dm)
    if fitted is None:  # DDP: rank 0 alone tests and writes the outputs
        return {}
    best = CaptionModule.load(fitted.best) if fitted.best else model
    metrics, predictions = recipe.evaluate(best, dm, out, data["smoke"], device)
    metrics.update(fitted.report)
    write_metrics(out, metrics)
    write_json_atomic(out / "config.json", plain(cfg))
    recipe.write_summary(
        out, f"caption run {out.name}", OmegaConf.to_yaml(cfg), metrics, predictions, fitted.best
    )
    print(
        f"caption done: test BLEU-4 {metrics['test/bleu4']:.3f}, CIDEr-D {metrics['test/cider']:.3f} → {out}"
    )
    if fitted.best:
        print("evaluate the best checkpoint again / caption a folder of images with it:")
        print("  " + TASKS["caption_test"].command(fitted.best))
        print("  " + TASKS["caption_generate"].command(fitted.best, "image_dir=DIR"))
    return metrics


if __name__ == "__main__":
    refuse_mode("caption")
    main()
