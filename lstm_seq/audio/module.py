"""The Lightning module of the speech recogniser: features on the model's device, CTC training,
WER/CER evaluation with greedy and (optionally) beam + LM decoding.

Everything needed to rebuild the recogniser — vocabulary, feature settings, model sizes — is in
``hparams`` and therefore in every checkpoint, together with ``pipeline: "asr"``, which
:func:`load_checkpoint` checks so that a checkpoint of another pipeline fails clearly.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from lstm_seq.audio.data.datasets import Batch
from lstm_seq.audio.decoding.decode import BeamConfig, BeamSearchDecoder, greedy_decode
from lstm_seq.audio.features import MFCC, FeatureConfig, SpecAugment
from lstm_seq.audio.model import AcousticModel, ModelConfig
from lstm_seq.audio.vocab import CharVocab
from lstm_seq.metrics.wer import char_errors, word_errors
from lstm_seq.training.checkpoint_io import CheckpointError, load_checkpoint_file, save_atomic

log = logging.getLogger(__name__)

PIPELINE = "asr"
DECODE_KEY = "asr_decode"  # checkpoint entry of the tuned decoding settings
__all__ = ["ASRModule", "CheckpointError", "ctc_feasible", "load_checkpoint", "store_decode_settings"]


def ctc_feasible(out_lengths: Tensor, targets: Tensor, target_lengths: Tensor) -> Tensor:
    """(B,) bool: can ``out_lengths`` steps hold each target (its length plus one blank between
    every pair of repeated characters)?"""
    repeats = ((targets[:, 1:] == targets[:, :-1]) & (targets[:, 1:] != 0)).long()
    mask = torch.arange(1, targets.shape[1], device=targets.device)[None, :] < target_lengths[:, None]
    needed = target_lengths + (repeats * mask).sum(1)
    return out_lengths >= needed


class ASRModule(pl.LightningModule):
    """MFCC → :class:`AcousticModel` → CTC.

    Args:
        vocab: ``CharVocab.to_dict()``.
        features: ``FeatureConfig`` fields.
        model: ``ModelConfig`` fields.
        specaugment: ``SpecAugment`` kwargs (empty dict or None disables it).
        optim: ``lr``, ``weight_decay``, ``pct_start`` (one-cycle warm-up share), ``max_lr``.
    """

    def __init__(
        self,
        vocab: dict[str, str] | None = None,
        features: dict[str, Any] | None = None,
        model: dict[str, Any] | None = None,
        specaugment: dict[str, Any] | None = None,
        optim: dict[str, Any] | None = None,
        pipeline: str = PIPELINE,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.vocab = CharVocab.from_dict(vocab) if vocab else CharVocab()
        self.feature_cfg = FeatureConfig.from_dict(features or {})
        self.model_cfg = ModelConfig.from_dict(model or {})
        self.optim_cfg = {"lr": 2e-3, "weight_decay": 1e-2, "pct_start": 0.15, **(optim or {})}
        self.featurizer = MFCC(self.feature_cfg)
        self.specaug = SpecAugment(**specaugment) if specaugment else None
        self.acoustic = AcousticModel(self.feature_cfg.dim, len(self.vocab), self.model_cfg)
        self.beam_decoder: Callable[[Tensor, Tensor], list[str]] | None = None
        self.dropped_ctc = 0  # utterances too long for their subsampled length (cumulative)
        self._eval: dict[str, list[str]] = {}
        self.test_predictions: list[dict[str, Any]] = []
        self.lm_texts: list[str] = []  # training transcripts for the beam-search LM (saved in checkpoints)
        self.decode_settings: dict[str, float] = {}  # LM weight / word score tuned on validation (saved too)

    # ---------------------------------------------------------------- forward
    def forward(self, wave: Tensor, wave_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Waveforms (B, N) with (B,) sample lengths → log-posteriors (B, T', V) float32, (B,) lengths."""
        feats, frames = self.featurizer(wave, wave_lengths)
        logits, out_lengths = self.acoustic(feats, frames)
        return logits.float().log_softmax(-1), out_lengths

    def _ctc(self, log_probs: Tensor, out_lengths: Tensor, batch: Batch, stage: str) -> Tensor | None:
        """CTC in float32 outside autocast, over the feasible utterances only."""
        ok = ctc_feasible(out_lengths, batch.targets, batch.target_lengths)
        n_bad = int((~ok).sum())
        if n_bad:
            self.dropped_ctc += n_bad
            log.warning(
                "%s: dropped %d utterance(s) whose subsampled length cannot hold the transcript (total %d)",
                stage,
                n_bad,
                self.dropped_ctc,
            )
        if not bool(ok.any()):
            return None
        with torch.autocast(device_type=log_probs.device.type, enabled=False):
            return F.ctc_loss(
                log_probs[ok].float().transpose(0, 1),
                batch.targets[ok],
                out_lengths[ok],
                batch.target_lengths[ok],
                blank=self.vocab.blank,
                reduction="mean",
                zero_infinity=True,
            )

    def transfer_batch_to_device(
        self, batch: Batch | None, device: torch.device, dataloader_idx: int
    ) -> Batch | None:
        return batch.to(device) if isinstance(batch, Batch) else batch

    # ---------------------------------------------------------------- training
    def training_step(self, batch: Batch | None, batch_idx: int) -> Tensor | None:
        if batch is None:
            return None
        feats, frames = self.featurizer(batch.wave, batch.wave_lengths, batch.warp)
        if self.specaug is not None:
            self.specaug.train(self.training)
            feats = self.specaug(feats, frames)
        logits, out_lengths = self.acoustic(feats, frames)
        loss = self._ctc(logits.float().log_softmax(-1), out_lengths, batch, "train")
        if loss is None:
            return None
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch))
        self.log("train/dropped_ctc", float(self.dropped_ctc), batch_size=len(batch))
        return loss

    # ---------------------------------------------------------------- evaluation
    def _evaluate(self, batch: Batch | None, stage: str) -> None:
        if batch is None:
            return
        log_probs, out_lengths = self(batch.wave, batch.wave_lengths)
        loss = self._ctc(log_probs, out_lengths, batch, stage)
        if loss is not None:
            self.log(f"{stage}/loss", loss, batch_size=len(batch), sync_dist=True)
        store = self._eval
        store.setdefault("refs", []).extend(batch.texts)
        greedy = greedy_decode(log_probs, out_lengths, self.vocab)
        store.setdefault("greedy", []).extend(greedy)
        if stage == "test":
            beam = self.beam_decoder(log_probs, out_lengths) if self.beam_decoder is not None else None
            if beam is not None:
                store.setdefault("beam", []).extend(beam)
            for i, (ref, g) in enumerate(zip(batch.texts, greedy, strict=True)):
                row = {"path": batch.paths[i], "ref": ref, "greedy": g}
                if beam is not None:
                    row["beam"] = beam[i]
                self.test_predictions.append(row)

    def _log_rates(self, stage: str) -> None:
        store, self._eval = self._eval, {}
        refs = store.get("refs", [])
        if not refs:
            return
        rates = {}  # each decoder's WER and CER, computed once
        for name in ("greedy", "beam"):
            if name not in store:
                continue
            rates[name] = word_errors(refs, store[name]).rate, char_errors(refs, store[name]).rate
            self.log(f"{stage}/wer_{name}", rates[name][0])
            self.log(f"{stage}/cer_{name}", rates[name][1])
        w, c = rates["beam" if "beam" in rates else "greedy"]
        self.log(f"{stage}/wer", w, prog_bar=True)
        self.log(f"{stage}/cer", c, prog_bar=stage != "val")

    def on_validation_epoch_start(self) -> None:
        self._eval = {}

    def validation_step(self, batch: Batch | None, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_rates("val")

    def on_test_epoch_start(self) -> None:
        self._eval = {}
        self.test_predictions = []

    def test_step(self, batch: Batch | None, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._log_rates("test")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["asr_lm_texts"] = list(self.lm_texts)
        checkpoint[DECODE_KEY] = dict(self.decode_settings)
        checkpoint["asr_dropped_ctc"] = self.dropped_ctc  # a resumed run goes on counting

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.lm_texts = list(checkpoint.get("asr_lm_texts", []))
        self.decode_settings = dict(checkpoint.get(DECODE_KEY, {}))
        self.dropped_ctc = int(checkpoint.get("asr_dropped_ctc", 0))

    def attach_beam_search(self, cfg: BeamConfig, work_dir: str | os.PathLike[str]) -> bool:
        """Use beam search (+ n-gram LM of :attr:`lm_texts`) in test and transcription; returns
        False (greedy only, with a warning) when no transcripts are available for the LM/lexicon."""
        if not self.lm_texts and (cfg.lexicon or cfg.lm_order > 0):
            log.warning("no training transcripts stored for the language model: greedy decoding only")
            self.beam_decoder = None
            return False
        self.beam_decoder = BeamSearchDecoder(self.vocab, cfg, self.lm_texts, work_dir)
        return True

    # ---------------------------------------------------------------- optimisation
    def configure_optimizers(self) -> Any:
        cfg = self.optim_cfg
        opt = torch.optim.AdamW(self.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        total = int(self.trainer.estimated_stepping_batches)
        if total <= 0 or total > 10**8:
            return opt
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg["lr"], total_steps=total, pct_start=cfg["pct_start"], anneal_strategy="cos"
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> ASRModule:
    """Rebuild an :class:`ASRModule` from a checkpoint, checking that it belongs to this pipeline.

    The file is read with ``weights_only=True`` (:func:`~lstm_seq.training.checkpoint_io.load_checkpoint_file`):
    it can never run code. Raises :class:`CheckpointError` naming ``path`` for a missing, truncated,
    unsafe or foreign file."""
    ckpt = load_checkpoint_file(path, map_location, require_state_dict=False)
    hp = ckpt.get("hyper_parameters", {}) if isinstance(ckpt, dict) else {}
    if not isinstance(hp, dict) or hp.get("pipeline") != PIPELINE or "state_dict" not in ckpt:
        found = hp.get("pipeline", "no pipeline tag") if isinstance(hp, dict) else "no hyper-parameters"
        raise CheckpointError(f"{path} is not a speech-recognition (asr) checkpoint (found: {found})")
    module = ASRModule(**{k: hp.get(k) for k in ("vocab", "features", "model", "specaugment", "optim")})
    module.load_state_dict(ckpt["state_dict"])
    module.on_load_checkpoint(ckpt)
    return module.eval()


def store_decode_settings(path: str | os.PathLike[str], settings: dict[str, float]) -> None:
    """Record decoding settings tuned after training (``lm_weight``, ``word_score``) in the checkpoint at
    ``path``, rewriting it atomically; :func:`load_checkpoint` gives them back as ``decode_settings``."""
    ckpt = load_checkpoint_file(path, "cpu", require_state_dict=False)
    ckpt[DECODE_KEY] = dict(settings)
    save_atomic(ckpt, path)
