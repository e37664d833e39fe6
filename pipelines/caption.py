"""Image captioning: CNN features → lstm_seq.LSTM decoder.

Runnable commands (outputs go to a fresh run directory under outputs/):

    python -m pipelines.caption                                   # embedded scenes: build/reuse, train, test
    python -m pipelines.caption decoder=show_tell                 # the show-and-tell baseline
    python -m pipelines.caption debug=smoke                       # whole pipeline on tiny data (< 1 min, CPU)
    python -m pipelines.caption ckpt=outputs/…/checkpoints/last.ckpt       # resume training (exact, from any kill)
    python -m pipelines.caption trainer=ddp trainer.devices=2     # DDP: 2 processes (gloo on CPU)
    python -m pipelines.caption mode=test ckpt=outputs/…/checkpoints/best.ckpt
    python -m pipelines.caption mode=generate ckpt=PATH image_dir=DIR   # captions.jsonl + captions.html
    python -m pipelines.caption mode=export ckpt=PATH             # export/*.onnx + metadata.json
    python -m pipelines.caption data=karpathy data.json_file=… data.image_dir=… encoder=resnet50 \
        encoder.weights=IMAGENET1K_V2 encoder.frozen=true trainer=gpu
    python -m pipelines.caption data=coco | data=flickr …         # see conf/data/*.yaml

Each run writes metrics.json ({"test/bleu4": …, "test/cider": …}), checkpoints/, csv/ and tensorboard/
logs, predictions.jsonl (test) and summary.md.
"""

from __future__ import annotations

import hydra
import lightning.pytorch as pl
import torch
from omegaconf import DictConfig, OmegaConf

from lstm_seq.outputs import write_json_atomic, write_metrics
from lstm_seq.settings import field_names
from lstm_seq.vision import recipe
from lstm_seq.vision.data.corpus import Corpus, load_corpus
from lstm_seq.vision.data.datasets import LoaderConfig
from lstm_seq.vision.module import CaptionModule
from pipelines._config import validate
from pipelines._hydra import fit, paste_command, plain, resolve_path, run_dir
from pipelines._sweep import pipeline_job

# conf/data keys that are loader settings (the fields of LoaderConfig) or name the run's data; the others are
# the corpus' own (files, folders, sizes)
LOADER_KEYS = (*field_names(LoaderConfig), "smoke", "name")


def corpus(cfg: DictConfig) -> Corpus:
    opts = {k: v for k, v in plain(cfg.data).items() if k not in LOADER_KEYS}
    return load_corpus(cfg.data.name, resolve_path(cfg.paths.data_dir), bool(cfg.data.smoke), **opts)


@hydra.main(version_base="1.3", config_path="../conf", config_name="caption")
@pipeline_job  # records the job's status; returns objective.metric for sweepers
def main(cfg: DictConfig) -> dict:
    validate(cfg)  # values, input paths, the keys this mode needs (pipelines/_config.py); before any work
    out, data = run_dir(), plain(cfg.data)
    cache_dir = resolve_path(cfg.data.cache_dir) if cfg.data.get("cache_dir") else None
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    pl.seed_everything(cfg.seed, workers=True)
    device = "cuda" if str(cfg.trainer.accelerator) in ("gpu", "cuda") else "cpu"
    if cfg.mode == "export":
        return recipe.export(CaptionModule.load(resolve_path(cfg.ckpt)), out)
    if cfg.mode == "generate":
        model = CaptionModule.load(resolve_path(cfg.ckpt))
        return recipe.generate(model, resolve_path(cfg.image_dir), out, plain(cfg.generate), device)
    scenes = corpus(cfg)
    if cfg.mode == "test":  # the vocabulary and image transform come from the checkpoint
        model = CaptionModule.load(resolve_path(cfg.ckpt))
        dm = recipe.datamodule(model, scenes, data, cfg.seed, cache_dir)
        metrics, _ = recipe.evaluate(model, dm, out, data["smoke"], device)
        return metrics
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
        print("  " + paste_command("caption", {"mode": "test", "ckpt": fitted.best}))
        print("  " + paste_command("caption", {"mode": "generate", "ckpt": fitted.best}, ["image_dir=DIR"]))
    return metrics


if __name__ == "__main__":
    main()
