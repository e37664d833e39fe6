"""``python -m pipelines.asr.test ckpt=PATH``: evaluate a checkpoint on the test set of ``data``
(conf/asr_test.yaml); the vocabulary and features come from the checkpoint, never from the config.
``debug=smoke`` tests on the tiny data; ``device=cuda`` on a GPU."""

from __future__ import annotations

from typing import Any

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig

from lstm_seq.audio import recipe
from lstm_seq.audio.module import ASRModule
from pipelines._config import validate
from pipelines._hydra import plain, resolve_path, run_dir
from pipelines._sweep import pipeline_job
from pipelines.asr._common import decode_settings, manifests


@hydra.main(version_base="1.3", config_path="../../conf", config_name="asr_test")
@pipeline_job
def main(cfg: DictConfig) -> dict[str, Any]:
    validate(cfg)  # values, input paths, the keys this task needs (pipelines/_config.py); before any work
    out, decode = run_dir(), decode_settings(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    module = ASRModule.load(resolve_path(cfg.ckpt))
    recipe.use_lm(module, decode)  # decode.lm_path= replaces the checkpoint's LM
    dm = recipe.datamodule(module, manifests(cfg, out), plain(cfg.data), cfg.seed, None)
    decoder = recipe.beam_decoder(module, decode, out / "lm")
    results, _ = recipe.evaluate(module, dm, decoder, out, str(cfg.device))
    print(f"test: {recipe.describe(results)} → {out / 'metrics.json'}")
    return results


if __name__ == "__main__":
    main()
