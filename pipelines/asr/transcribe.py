"""``python -m pipelines.asr.transcribe ckpt=PATH audio_dir=DIR``: transcribe every audio file under DIR into
transcripts.jsonl (conf/asr_transcribe.yaml); files longer than ``chunk_s`` seconds are decoded in pieces
(LibriSpeech-length utterances: ``chunk_s=30``)."""

from __future__ import annotations

from typing import Any

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig

from lstm_seq.audio import recipe
from lstm_seq.audio.module import ASRModule
from pipelines._config import validate
from pipelines._hydra import resolve_path, run_dir
from pipelines._sweep import pipeline_job
from pipelines.asr._common import decode_settings


@hydra.main(version_base="1.3", config_path="../../conf", config_name="asr_transcribe")
@pipeline_job
def main(cfg: DictConfig) -> dict[str, Any]:
    validate(cfg)  # values, input paths, the keys this task needs (pipelines/_config.py); before any work
    out, decode = run_dir(), decode_settings(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    module = ASRModule.load(resolve_path(cfg.ckpt))
    recipe.use_lm(module, decode)  # decode.lm_path= replaces the checkpoint's LM
    return recipe.transcribe(module, decode, resolve_path(cfg.audio_dir), out, cfg.chunk_s, str(cfg.device))


if __name__ == "__main__":
    main()
