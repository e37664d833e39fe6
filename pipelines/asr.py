"""Speech recognition: MFCC → conv subsampling → lstm_seq.LSTM → CTC, with greedy and beam + n-gram LM decoding.

Commands (every run writes into its own folder under outputs/, including metrics.json):

    python -m pipelines.asr                                   # synthetic corpus (built once), train, test
    python -m pipelines.asr debug=smoke                       # the whole pipeline on tiny data, < 1 min on CPU
    python -m pipelines.asr trainer.accelerator=gpu           # GPU, bf16 mixed precision
    python -m pipelines.asr ckpt=outputs/…/checkpoints/last.ckpt          # resume training (exact, mid-epoch)
    python -m pipelines.asr trainer=ddp trainer.devices=4                 # DDP: 4 processes (gloo on CPU)
    python -m pipelines.asr mode=test ckpt=PATH                           # evaluate on the configured test set
    python -m pipelines.asr mode=transcribe ckpt=PATH audio_dir=DIR       # → transcripts.jsonl
    python -m pipelines.asr mode=prepare data=librispeech data.root=/data/LibriSpeech   # also ljspeech, commonvoice
    python -m pipelines.asr data=librispeech                              # train on the prepared manifests
    python -m pipelines.asr data=speech_manifest data.train_manifest=train.jsonl \\
        data.val_manifest=val.jsonl data.test_manifest=test.jsonl        # your own manifests
    python -m pipelines.asr model=asr_unilstm decode=greedy               # unidirectional model, greedy decoding
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig, OmegaConf

from lstm_seq.audio.datamodule import ASRDataModule
from lstm_seq.audio.decode import BeamConfig
from lstm_seq.audio.importers import IMPORTERS
from lstm_seq.audio.manifest import read_manifest, write_manifest
from lstm_seq.audio.module import ASRModule, load_checkpoint
from lstm_seq.audio.plots import plot_utterances
from lstm_seq.audio.synth import SynthConfig, build_corpus
from lstm_seq.audio.transcribe import Transcriber, transcribe_to_jsonl
from lstm_seq.audio.vocab import CharVocab
from lstm_seq.training import (
    NonFiniteLossError,
    RunCheckpoint,
    end_data_parallel,
    stop_message,
    training_report,
)
from pipelines._hydra import (
    ConfigError,
    make_loggers,
    make_trainer,
    resolve_path,
    run_dir,
    write_json_atomic,
    write_jsonl_atomic,
    write_metrics,
)
from pipelines._sweep import pipeline_job

log = logging.getLogger("pipelines.asr")


def manifests(cfg: DictConfig, out: Path) -> dict[str, Path]:
    """The train/val/test manifests of ``cfg.data`` (building the synthetic corpus if needed)."""
    d = cfg.data
    if d.name == "speech_synth":
        n = d.smoke_utterances if d.smoke else d.n_utterances
        synth = SynthConfig(
            n_utterances=n,
            val_speakers=min(d.val_speakers, 3) if d.smoke else d.val_speakers,
            test_speakers=min(d.test_speakers, 4) if d.smoke else d.test_speakers,
            val_fraction=d.val_fraction,
            test_fraction=d.test_fraction,
            sample_rate=d.sample_rate,
            snr_db=tuple(d.snr_db),
            seed=d.seed,
        )
        t0 = time.time()
        paths = build_corpus(resolve_path(cfg.paths.data_dir), synth, workers=d.synth_workers)
        log.info("synthetic corpus ready in %.1f s: %s", time.time() - t0, paths["train"].parent)
        return paths
    paths = {}
    for split in ("train", "val", "test"):
        key = f"{split}_manifest"
        if OmegaConf.is_missing(d, key) or d.get(key) is None:
            raise ConfigError(f"data.{key} is not set (a JSON-lines or CSV manifest)")
        paths[split] = resolve_path(d[key])
        if d.smoke:  # the first few utterances only
            paths[split] = write_manifest(
                out / "smoke" / f"{split}.jsonl", read_manifest(paths[split])[: d.smoke_utterances]
            )
    return paths


def beam_config(cfg: DictConfig) -> BeamConfig | None:
    d = OmegaConf.to_container(cfg.decode, resolve=True)
    assert isinstance(d, dict)
    return BeamConfig(**{k: v for k, v in d.items() if k != "beam"}) if d.get("beam") else None


def build_module(cfg: DictConfig) -> ASRModule:
    feats = OmegaConf.to_container(cfg.features, resolve=True)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    assert isinstance(feats, dict) and isinstance(model, dict)
    spec = feats.pop("specaugment", None)
    optim = OmegaConf.to_container(cfg.optim, resolve=True)
    return ASRModule(vocab=CharVocab().to_dict(), features=feats, model=model, specaugment=spec, optim=optim)


def test(
    cfg: DictConfig, module: ASRModule, dm: ASRDataModule, out: Path, trainer: pl.Trainer | None = None
) -> dict[str, Any]:
    """Test ``module`` (beam + LM when configured) and write metrics.json and predictions.jsonl."""
    beam = beam_config(cfg)
    if beam is not None:
        module.attach_beam_search(beam, out / "lm")
    trainer = trainer or make_trainer(cfg.trainer, out, callbacks=[], loggers=False, single_device=True)
    results = trainer.test(module, datamodule=dm, verbose=False)[0]
    results = {k: float(v) for k, v in results.items()}
    results["test/utterances"] = len(module.test_predictions)
    write_metrics(out, results)
    write_jsonl_atomic(out / "predictions.jsonl", module.test_predictions)
    return results


@hydra.main(version_base="1.3", config_path="../conf", config_name="asr")
@pipeline_job  # validates cfg, records the job's status; returns objective.metric for sweepers
def main(cfg: DictConfig) -> dict[str, Any]:
    out = run_dir()
    pl.seed_everything(cfg.seed, workers=True)
    t0 = time.time()
    if cfg.mode == "prepare":
        if cfg.data.name not in IMPORTERS or not cfg.data.get("root"):
            raise ConfigError(
                f"mode=prepare needs data=librispeech|ljspeech|commonvoice and data.root (got data={cfg.data.name})"
            )
        extra = (
            {"val_fraction": cfg.data.val_fraction, "test_fraction": cfg.data.test_fraction}
            if cfg.data.name == "ljspeech"
            else {}
        )
        written = IMPORTERS[cfg.data.name](
            resolve_path(cfg.data.root), resolve_path(cfg.data.manifest_dir), **extra
        )
        summary = {f"prepare/{k}": len(read_manifest(p)) for k, p in written.items()}
        write_metrics(out, summary)
        print("\n".join(f"wrote {p} ({summary[f'prepare/{k}']} utterances)" for k, p in written.items()))
        return summary

    if cfg.mode == "transcribe":
        if not cfg.ckpt or not cfg.audio_dir:
            raise ConfigError("mode=transcribe needs ckpt=PATH and audio_dir=DIR")
        module = load_checkpoint(resolve_path(cfg.ckpt))
        beam = beam_config(cfg)
        if beam is not None:
            module.attach_beam_search(beam, out / "lm")
        transcriber = Transcriber(module, chunk_s=cfg.transcribe.chunk_s, device=cfg.transcribe.device)
        counts = transcribe_to_jsonl(transcriber, resolve_path(cfg.audio_dir), out / "transcripts.jsonl")
        write_metrics(out, {f"transcribe/{k}": v for k, v in counts.items()})
        print(
            f"transcribed {counts['transcribed']}/{counts['files']} files ({counts['errors']} errors) → {out / 'transcripts.jsonl'}"
        )
        return counts

    if cfg.mode not in ("train", "test"):
        raise ConfigError(f"mode must be train, test, transcribe or prepare, got {cfg.mode!r}")
    if cfg.mode == "test" and not cfg.ckpt:
        raise ConfigError("mode=test needs ckpt=PATH")
    # in mode=test the vocabulary and sample rate come from the checkpoint, never from the config
    module = load_checkpoint(resolve_path(cfg.ckpt)) if cfg.mode == "test" else build_module(cfg)
    sr = module.feature_cfg.sample_rate
    d = cfg.data
    dm = ASRDataModule(
        manifests(cfg, out),
        module.vocab,
        sample_rate=sr,
        max_duration=d.max_duration,
        max_frames=d.max_frames,
        frames_per_second=sr / module.feature_cfg.hop_length,
        num_workers=d.num_workers,
        seed=cfg.seed,
    )
    if cfg.mode == "test":
        results = test(cfg, module, dm, out)
        print(f"test: WER {results['test/wer']:.2%}  CER {results['test/cer']:.2%}  → {out / 'metrics.json'}")
        return results

    module.lm_texts = dm.dataset("train").texts
    ckpt_cb = RunCheckpoint(
        dirpath=out / "checkpoints",
        filename="best-{epoch:02d}",
        monitor="val/wer",
        mode="min",
        save_last=True,
        enable_version_counter=False,  # last.ckpt is shared with the mid-epoch checkpoints (resilience)
    )
    loggers = make_loggers(cfg.get("logger"), out)
    callbacks: list[Any] = [ckpt_cb]
    if loggers:  # the learning-rate monitor needs a logger
        callbacks.append(pl.callbacks.LearningRateMonitor("step"))
    if cfg.callbacks.early_stopping_patience:
        callbacks.append(
            pl.callbacks.EarlyStopping("val/wer", patience=cfg.callbacks.early_stopping_patience, mode="min")
        )
    trainer = make_trainer(cfg.trainer, out, callbacks, loggers, resilience=cfg.get("resilience"))
    trainer.fit(module, datamodule=dm, ckpt_path=str(resolve_path(cfg.ckpt)) if cfg.ckpt else None)
    t_train = time.time() - t0
    report, halted = training_report(trainer), stop_message(trainer)
    if not end_data_parallel(trainer):  # DDP: rank 0 alone tests and writes the outputs
        return {}
    if halted:
        write_metrics(out, {**report, "train/epochs": trainer.current_epoch})
        raise NonFiniteLossError(f"{halted}; last checkpoint: {out / 'checkpoints' / 'last.ckpt'}")
    dropped_ctc = module.dropped_ctc
    best = ckpt_cb.best_model_path or ckpt_cb.last_model_path
    module = load_checkpoint(best) if best else module
    results = test(cfg, module, dm, out, trainer=None)
    results.update(
        {
            "train/seconds": t_train,
            "train/epochs": trainer.current_epoch,
            "train/dropped_ctc": dropped_ctc,
            **report,
        }
    )
    for split, ds in dm.datasets.items():
        results.update({f"data/{split}/{k}": v for k, v in ds.summary().items()})
    write_metrics(out, results)
    if cfg.plot_utterances:
        items = [{"path": r["path"], "ref": r["ref"]} for r in module.test_predictions[: cfg.plot_utterances]]
        plot_utterances(module, items, out / "plots")
    write_json_atomic(out / "config.json", OmegaConf.to_container(cfg, resolve=True))
    print(
        f"\nASR done in {time.time() - t0:.0f} s — test WER {results['test/wer']:.2%}, CER {results['test/cer']:.2%}"
        f" (greedy WER {results.get('test/wer_greedy', float('nan')):.2%}); best checkpoint {best}\nrun dir: {out}"
    )
    return results


if __name__ == "__main__":
    main()
