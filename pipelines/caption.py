"""Image captioning: CNN features → lstm_seq.LSTM decoder.

Runnable commands (outputs go to a fresh run directory under outputs/):

    python -m pipelines.caption                                   # embedded scenes: build/reuse, train, test
    python -m pipelines.caption decoder=show_tell                 # the show-and-tell baseline
    python -m pipelines.caption debug=smoke                       # whole pipeline on tiny data (< 1 min, CPU)
    python -m pipelines.caption ckpt=outputs/…/checkpoints/last.ckpt       # resume training (exact, mid-epoch)
    python -m pipelines.caption trainer=ddp trainer.devices=2     # DDP: 2 processes (gloo on CPU)
    python -m pipelines.caption mode=test ckpt=outputs/…/checkpoints/best.ckpt
    python -m pipelines.caption mode=generate ckpt=PATH image_dir=DIR   # captions.jsonl + captions.html
    python -m pipelines.caption data=karpathy data.json_file=… data.image_dir=… encoder=resnet50 \
        encoder.weights=IMAGENET1K_V2 encoder.frozen=true trainer=gpu
    python -m pipelines.caption data=coco | data=flickr …         # see conf/data/*.yaml

Each run writes metrics.json ({"test/bleu4": …, "test/cider": …}), checkpoints/, csv/ and tensorboard/
logs, predictions.jsonl (test) and summary.md.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import hydra
import lightning.pytorch as pl
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from lstm_seq.metrics.caption import java_metrics
from lstm_seq.training import (
    NonFiniteLossError,
    ResumableDataLoader,
    RunCheckpoint,
    ShuffledBatchSampler,
    end_data_parallel,
    stop_message,
    training_report,
)
from lstm_seq.vision.corpus import Corpus, load_corpus
from lstm_seq.vision.datasets import CaptionDataset, collate_captions
from lstm_seq.vision.features import build_feature_cache
from lstm_seq.vision.generate import caption_folder
from lstm_seq.vision.images import ImageTransform
from lstm_seq.vision.module import CaptionModule
from lstm_seq.vision.synth import novel_pair_recall
from lstm_seq.vision.vocab import Vocabulary
from pipelines._hydra import (
    ConfigError,
    make_loggers,
    make_trainer,
    resolve_path,
    run_dir,
    write_jsonl_atomic,
    write_metrics,
    write_text_atomic,
)
from pipelines._sweep import pipeline_job

log = logging.getLogger(__name__)
DATA_KEYS = (
    "feature_cache",
    "cache_dir",
    "batch_size",
    "num_workers",
    "train_captions",
    "min_freq",
    "max_len",
    "mean",
    "std",
    "max_pixels",
    "smoke",
    "name",
)


def _loader(
    corpus: Corpus, split: str, model: CaptionModule, data: DictConfig, train: bool, seed: int = 0
) -> DataLoader:
    """Training: shuffled by (seed, epoch), sharded over DDP ranks, resumable mid-epoch, per-sample seeds for
    the caption draw. Evaluation: every rank reads the whole split in order."""
    ds = CaptionDataset(
        corpus.split(split), model.vocab, model.transform, data.train_captions if train else None,
        data.max_len, corpus.images, data.get("max_pixels", 50_000_000),
    )  # fmt: skip
    if data.get("feature_cache") and model.encoder.frozen:
        ds.features, ds.feature_errors = build_feature_cache(
            model.encoder, ds, resolve_path(data.cache_dir), data.batch_size
        )
    kwargs = {
        "num_workers": data.num_workers, "persistent_workers": data.num_workers > 0,
        "collate_fn": functools.partial(collate_captions, pad_id=model.vocab.pad_id),
    }  # fmt: skip
    if train:
        sampler = ShuffledBatchSampler(len(ds), data.batch_size, seed=seed, seed_samples=True)
        return ResumableDataLoader(ds, batch_sampler=sampler, **kwargs)
    return DataLoader(ds, batch_size=data.batch_size, shuffle=False, **kwargs)


def _corpus(cfg: DictConfig) -> Corpus:
    opts = {k: v for k, v in OmegaConf.to_container(cfg.data, resolve=True).items() if k not in DATA_KEYS}
    return load_corpus(cfg.data.name, resolve_path(cfg.paths.data_dir), bool(cfg.data.smoke), **opts)


def _test(
    trainer: pl.Trainer, model: CaptionModule, corpus: Corpus, cfg: DictConfig, out: Path, ckpt: str | None
) -> dict:
    loader = _loader(corpus, "test", model, cfg.data, False)
    res = trainer.test(model, loader, ckpt_path=ckpt, verbose=False)[0]
    metrics = {k: float(v) for k, v in res.items() if k.startswith("test/")}
    tr = model.test_results
    extra, why = {}, "METEOR/SPICE skipped in smoke mode"
    if not cfg.data.smoke:
        extra, why = java_metrics(tr["hyps"], tr["refs"], prefix="test/")
    if why:
        log.info(why)
    metrics.update(extra)
    if cfg.data.name == "scenes":  # composition: how often the held-out colour–shape pairs are named
        objects = {it.image_id: it.extra["objects"] for it in corpus.split("test")}
        metrics["test/novel_pair_recall"] = novel_pair_recall(tr["hyps"], [objects[i] for i in tr["ids"]])
    rows = zip(tr["ids"], tr["hyps"], tr["refs"], strict=True)
    write_jsonl_atomic(
        out / "predictions.jsonl", ({"id": i, "caption": h, "references": r} for i, h, r in rows)
    )
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="caption")
@pipeline_job  # validates cfg, records the job's status; returns objective.metric for sweepers
def main(cfg: DictConfig) -> dict:
    out = run_dir()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.mode in ("test", "generate"):
        if not cfg.ckpt:
            raise ConfigError(f"mode={cfg.mode} needs ckpt=PATH")
        model = CaptionModule.load(resolve_path(cfg.ckpt))
        if cfg.mode == "generate":
            if not cfg.image_dir:
                raise ConfigError("mode=generate needs image_dir=DIR")
            g = cfg.generate
            metrics = caption_folder(
                model,
                resolve_path(cfg.image_dir),
                out,
                g.batch_size,
                g.num_workers,
                None,
                g.max_pixels,
                g.thumbnail,
            )
        else:
            trainer = make_trainer(cfg.trainer, out, [], make_loggers(cfg.logger, out))
            metrics = _test(trainer, model, _corpus(cfg), cfg, out, None)
        write_metrics(out, metrics)
        log.info("metrics: %s → %s", metrics, out)
        return metrics
    if cfg.mode != "train":
        raise ConfigError(f"mode={cfg.mode!r}: expected train, test or generate")

    corpus = _corpus(cfg)
    vocab = Vocabulary.build((c for it in corpus.split("train") for c in it.captions), cfg.data.min_freq)
    transform = ImageTransform(cfg.data.image_size, tuple(cfg.data.mean), tuple(cfg.data.std))
    model = CaptionModule(
        vocab.to_dict(), transform.to_dict(), OmegaConf.to_container(cfg.encoder, resolve=True),
        OmegaConf.to_container(cfg.decoder, resolve=True), **OmegaConf.to_container(cfg.model, resolve=True),
    )  # fmt: skip
    ckpt_cb = RunCheckpoint(
        dirpath=out / "checkpoints", filename="best", monitor="val/cider", mode="max", save_last=True,
        enable_version_counter=False,  # last.ckpt is shared with the mid-epoch checkpoints (resilience)
    )  # fmt: skip
    loggers = make_loggers(cfg.logger, out)
    trainer = make_trainer(cfg.trainer, out, [ckpt_cb], loggers, resilience=cfg.get("resilience"))
    trainer.fit(
        model,
        _loader(corpus, "train", model, cfg.data, True, cfg.seed),
        _loader(corpus, "val", model, cfg.data, False),
        ckpt_path=str(resolve_path(cfg.ckpt)) if cfg.ckpt else None,  # resume
    )
    report, halted, epochs = training_report(trainer), stop_message(trainer), trainer.current_epoch
    if trainer.world_size > 1:  # DDP: rank 0 alone tests, on one device, and writes the outputs
        if not end_data_parallel(trainer):
            return {}
        trainer = make_trainer(cfg.trainer, out, [], loggers, single_device=True)
    if halted:
        write_metrics(out, {**report, "train/epochs": epochs})
        raise NonFiniteLossError(f"{halted}; last checkpoint: {out / 'checkpoints' / 'last.ckpt'}")
    metrics = _test(trainer, model, corpus, cfg, out, ckpt_cb.best_model_path or None)
    metrics["train/epochs"] = epochs
    metrics.update(report)
    write_metrics(out, metrics)
    summary = [
        f"# caption run {out.name}",
        "",
        "```yaml",
        OmegaConf.to_yaml(cfg),
        "```",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    summary += [f"| {k} | {v:.4f} |" for k, v in sorted(metrics.items())]
    summary += ["", f"best checkpoint: {ckpt_cb.best_model_path}", "", "sample test captions:"]
    summary += [
        f"- {h}  (ref: {r[0]})"
        for h, r in list(zip(model.test_results["hyps"], model.test_results["refs"], strict=True))[:10]
    ]
    write_text_atomic(out / "summary.md", "\n".join(summary) + "\n")
    log.info("metrics: %s → %s", metrics, out)
    return metrics


if __name__ == "__main__":
    main()
