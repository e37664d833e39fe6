"""``python -m pipelines.asr``: train on ``data``, then test the best weights with tuned decoding (conf/asr.yaml).
The other tasks are entry points of their own (pipelines/asr/__init__.py lists the commands)."""

from __future__ import annotations

import time
from typing import Any

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig

from lstm_seq.audio import recipe
from lstm_seq.audio.module import ASRModule
from lstm_seq.audio.vocab import CharVocab
from lstm_seq.outputs import write_json_atomic
from pipelines._config import TASKS, validate
from pipelines._hydra import fit, plain, refuse_mode, run_dir
from pipelines._sweep import pipeline_job
from pipelines.asr._common import decode_settings, manifests


@hydra.main(version_base="1.3", config_path="../../conf", config_name="asr")
@pipeline_job  # records the job's status; returns objective.metric for sweepers
def main(cfg: DictConfig) -> dict[str, Any]:
    validate(cfg)  # values, input paths, the keys this task needs (pipelines/_config.py); before any work
    out, decode, t0 = run_dir(), decode_settings(cfg), time.time()
    pl.seed_everything(cfg.seed, workers=True)
    features, model, optim = plain(cfg.features), plain(cfg.model), plain(cfg.optim)
    spec = features.pop("specaugment", None)
    module = ASRModule(CharVocab().to_dict(), features, model, spec, optim)
    augment = plain(cfg.augment) if cfg.get("augment") else None
    dm = recipe.datamodule(module, manifests(cfg, out), plain(cfg.data), cfg.seed, augment)
    device = "cuda" if str(cfg.trainer.accelerator) in ("gpu", "cuda") else "cpu"
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
        print("  " + TASKS["asr_test"].command(str(final)))
        print("  " + TASKS["asr_transcribe"].command(str(final), "audio_dir=DIR"))
    return results


if __name__ == "__main__":
    refuse_mode("asr")
    main()
