"""Speech recognition: MFCC → conv subsampling → lstm_seq.LSTM → CTC, with greedy and beam + n-gram LM decoding.

Commands (every run writes into its own folder under outputs/, including metrics.json):

    python -m pipelines.asr                                   # synthetic corpus (built once), train, test
    python -m pipelines.asr debug=smoke                       # the whole pipeline on tiny data, < 1 min on CPU
    python -m pipelines.asr trainer.accelerator=gpu           # GPU, bf16 mixed precision
    python -m pipelines.asr ckpt=outputs/…/checkpoints/last.ckpt          # resume training (exact, from any kill)
    python -m pipelines.asr trainer=ddp trainer.devices=4                 # DDP: 4 processes (gloo on CPU)
    python -m pipelines.asr mode=test ckpt=PATH                           # evaluate on the configured test set
    python -m pipelines.asr mode=transcribe ckpt=PATH audio_dir=DIR       # → transcripts.jsonl
    python -m pipelines.asr mode=export ckpt=PATH                         # → export/*.onnx + metadata.json
    python -m pipelines.asr mode=prepare data=librispeech data.root=/data/LibriSpeech   # also ljspeech, commonvoice
    python -m pipelines.asr data=librispeech                              # train on the prepared manifests
    python -m pipelines.asr data=speech_manifest data.train_manifest=train.jsonl \\
        data.val_manifest=val.jsonl data.test_manifest=test.jsonl        # your own manifests
    python -m pipelines.asr model=asr_unilstm decode=greedy               # unidirectional model, greedy decoding
    python -m pipelines.asr augment=strong                                # stronger waveform augmentation (or none)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig

from lstm_seq.audio import recipe
from lstm_seq.audio.module import ASRModule
from lstm_seq.audio.vocab import CharVocab
from lstm_seq.outputs import write_json_atomic
from pipelines._config import validate
from pipelines._hydra import fit, paste_command, plain, resolve_path, run_dir
from pipelines._sweep import pipeline_job


def manifests(cfg: DictConfig, out: Path) -> dict[str, Path]:
    """The train/val/test manifests of ``cfg.data`` (building the synthetic corpus if needed)."""
    d = cfg.data
    if d.name == "speech_synth":
        return recipe.synthetic_manifests(plain(d), resolve_path(cfg.paths.data_dir), d.synth_workers)
    paths = {s: resolve_path(d[f"{s}_manifest"]) for s in recipe.SPLITS}
    return recipe.smoke_manifests(paths, out, d.smoke_utterances) if d.smoke else paths


@hydra.main(version_base="1.3", config_path="../conf", config_name="asr")
@pipeline_job  # records the job's status; returns objective.metric for sweepers
def main(cfg: DictConfig) -> dict[str, Any]:
    validate(cfg)  # values, input paths, the keys this mode needs (pipelines/_config.py); before any work
    out, decode, t0 = run_dir(), plain(cfg.decode), time.time()
    if decode.get("lm_path"):
        decode["lm_path"] = str(resolve_path(decode["lm_path"]))
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.mode == "prepare":
        extra = (
            {k: cfg.data[k] for k in ("val_fraction", "test_fraction")} if cfg.data.name == "ljspeech" else {}
        )
        root, manifest_dir = resolve_path(cfg.data.root), resolve_path(cfg.data.manifest_dir)
        return recipe.prepare(cfg.data.name, root, manifest_dir, out, **extra)
    if cfg.mode == "export":
        return recipe.export(ASRModule.load(resolve_path(cfg.ckpt)), out)
    if cfg.mode == "transcribe":
        module = ASRModule.load(resolve_path(cfg.ckpt))
        recipe.use_lm(module, decode)  # decode.lm_path= replaces the checkpoint's LM
        t = cfg.transcribe
        return recipe.transcribe(module, decode, resolve_path(cfg.audio_dir), out, t.chunk_s, t.device)
    # in mode=test the vocabulary and features come from the checkpoint, never from the config
    if cfg.mode == "test":
        module = ASRModule.load(resolve_path(cfg.ckpt))
        recipe.use_lm(module, decode)
    else:
        features, model, optim = plain(cfg.features), plain(cfg.model), plain(cfg.optim)
        spec = features.pop("specaugment", None)
        module = ASRModule(CharVocab().to_dict(), features, model, spec, optim)
    augment = plain(cfg.augment) if cfg.mode == "train" and cfg.get("augment") else None
    dm = recipe.datamodule(module, manifests(cfg, out), plain(cfg.data), cfg.seed, augment)
    device = "cuda" if str(cfg.trainer.accelerator) in ("gpu", "cuda") else "cpu"
    if cfg.mode == "test":
        results, _ = recipe.evaluate(module, dm, recipe.beam_decoder(module, decode, out / "lm"), out, device)
        print(f"test: {recipe.describe(results)} → {out / 'metrics.json'}")
        return results
    # every input the run will need, before the first training step: the LM file, all manifests
    recipe.attach_decoding(module, decode, dm.dataset("train").texts)
    recipe.check_inputs(dm)
    fitted = fit(cfg, module, out, "val/wer", "min", "best-epoch{epoch:02d}", datamodule=dm)
    if fitted is None:  # DDP: rank 0 alone tests and writes the outputs
        return {}
    best = ASRModule.load(fitted.best) if fitted.best else module
    final = out / "checkpoints" / "final.ckpt"  # the best weights with the decoding tuned after training
    report = {**fitted.report, "train/dropped_ctc": module.dropped_ctc}
    results = recipe.finish_training(
        best, dm, decode, out, report, fitted.best, final, cfg.plot_utterances, device
    )
    write_json_atomic(out / "config.json", plain(cfg))
    print(
        f"\nASR done in {time.time() - t0:.0f} s — test {recipe.describe(results)}; best checkpoint {fitted.best}"
    )
    print(f"run dir: {out}")
    if fitted.best:
        print(
            "evaluate the final checkpoint (best weights, tuned decoding) / transcribe audio files with it:"
        )
        print("  " + paste_command("asr", {"mode": "test", "ckpt": str(final)}))
        print("  " + paste_command("asr", {"mode": "transcribe", "ckpt": str(final)}, ["audio_dir=DIR"]))
    return results


if __name__ == "__main__":
    main()
