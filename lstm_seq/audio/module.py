"""The Lightning module of the speech recogniser: features on the model's device, the CTC loss, greedy WER/CER
on the validation set during training.

Everything needed to rebuild the recogniser — vocabulary, feature settings, model sizes — is in ``hparams`` and
therefore in every checkpoint, together with ``pipeline: "asr"``, which :meth:`ASRModule.load` checks so that a
checkpoint of another pipeline fails clearly. The module also carries its
:class:`~lstm_seq.audio.decoding.setup.DecodingSetup` (LM, lexicon, tuned weights) into every checkpoint; decoding
itself (beam search, the test set) is done by :mod:`lstm_seq.audio.decoding.evaluate` on the module's emissions,
which :meth:`ASRModule.predict_step` gives batch by batch through ``trainer.predict``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from lstm_seq.audio.data.datasets import Batch
from lstm_seq.audio.decoding.decode import greedy_decode
from lstm_seq.audio.decoding.emissions import BatchEmissions
from lstm_seq.audio.decoding.setup import CKPT_KEY, DecodingSetup
from lstm_seq.audio.features import MFCC, FeatureConfig, SpecAugment, SpecAugmentConfig, fit_dataset_cmvn
from lstm_seq.audio.model import AcousticModel, ModelConfig
from lstm_seq.audio.vocab import CharVocab
from lstm_seq.metrics.wer import char_errors, word_errors
from lstm_seq.settings import from_dict
from lstm_seq.training.checkpoint_io import CheckpointError, load_checkpoint_file
from lstm_seq.training.optim import OptimConfig, optim_config, optimizer_and_schedule

log = logging.getLogger(__name__)

PIPELINE = "asr"
__all__ = ["ASRModule", "CheckpointError", "ctc_feasible"]


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
        specaugment: ``SpecAugmentConfig`` fields (empty dict or None disables it).
        optim: :class:`~lstm_seq.training.optim.OptimConfig` fields (missing ones: ``PRESETS["onecycle"]``, AdamW
            with the one-cycle schedule).

    Each group is a plain dict (so ``hparams`` and checkpoints hold plain dicts, readable with
    ``weights_only=True``) or its dataclass; missing keys take the dataclass defaults, unknown keys raise
    :class:`ValueError`.
    """

    def __init__(
        self,
        vocab: dict[str, str] | None = None,
        features: dict[str, Any] | FeatureConfig | None = None,
        model: dict[str, Any] | ModelConfig | None = None,
        specaugment: dict[str, Any] | SpecAugmentConfig | None = None,
        optim: dict[str, Any] | OptimConfig | None = None,
        pipeline: str = PIPELINE,
    ) -> None:
        super().__init__()
        self.vocab = CharVocab.from_dict(vocab) if vocab else CharVocab()
        self.feature_cfg = FeatureConfig.from_dict(features)
        self.model_cfg = from_dict(ModelConfig, model, "model")
        spec = from_dict(SpecAugmentConfig, specaugment, "features.specaugment") if specaugment else None
        self.optim_cfg = optim_config(optim, "onecycle")
        # plain dicts of every setting (defaults filled in): what checkpoints store
        self.save_hyperparameters({
            "vocab": self.vocab.to_dict(), "features": self.feature_cfg.to_dict(), "model": self.model_cfg.to_dict(),
            "specaugment": asdict(spec) if spec else None, "optim": asdict(self.optim_cfg), "pipeline": pipeline,
        })  # fmt: skip
        self.featurizer = MFCC(self.feature_cfg)
        self.specaug = SpecAugment(**asdict(spec)) if spec else None
        self.acoustic = AcousticModel(self.feature_cfg.dim, len(self.vocab), self.model_cfg)
        self.dropped_ctc = 0  # training utterances too long for their subsampled length (cumulative)
        self._eval: dict[str, list[str]] = {}
        self.decoding = DecodingSetup()  # LM, lexicon, tuned weights: saved in every checkpoint

    # ---------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> ASRModule:
        """Rebuild from a checkpoint, checking that it belongs to this pipeline; in eval mode, with its
        :attr:`decoding` (checkpoints older than :class:`DecodingSetup` are read too).

        The file is read with ``weights_only=True`` (:func:`~lstm_seq.training.checkpoint_io.load_checkpoint_file`):
        it can never run code. Raises :class:`CheckpointError` naming ``path`` for a missing, truncated,
        unsafe or foreign file."""
        ckpt = load_checkpoint_file(path, map_location, require_state_dict=False)
        hp = ckpt.get("hyper_parameters", {}) if isinstance(ckpt, dict) else {}
        if not isinstance(hp, dict) or hp.get("pipeline") != PIPELINE or "state_dict" not in ckpt:
            found = hp.get("pipeline", "no pipeline tag") if isinstance(hp, dict) else "no hyper-parameters"
            raise CheckpointError(f"{path} is not a speech-recognition (asr) checkpoint (found: {found})")
        module = cls(**{k: hp.get(k) for k in ("vocab", "features", "model", "specaugment", "optim")})
        module.load_state_dict(ckpt["state_dict"])
        module.on_load_checkpoint(ckpt)
        return module.eval()

    # ---------------------------------------------------------------- forward
    def forward(self, wave: Tensor, wave_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Waveforms (B, N) with (B,) sample lengths → log-posteriors (B, T', V) float32, (B,) lengths."""
        feats, frames = self.featurizer(wave, wave_lengths)
        logits, out_lengths = self.acoustic(feats, frames)
        return logits.float().log_softmax(-1), out_lengths

    def ctc_loss(
        self,
        log_probs: Tensor,
        out_lengths: Tensor,
        batch: Batch,
        count_dropped: bool = True,
        stage: str = "train",
    ) -> Tensor | None:
        """CTC in float32 outside autocast, over the feasible utterances only (None: no feasible one).

        Args:
            log_probs: (B, T', V) log-posteriors; out_lengths: (B,) valid steps.
            count_dropped: add the infeasible ones to :attr:`dropped_ctc` and warn (training).
        """
        # the one host synchronisation of the loss: the feasibility flags come to the CPU once, and every
        # decision below reads them there (the model's LSTM has already waited for the lengths)
        ok = ctc_feasible(out_lengths, batch.targets, batch.target_lengths).cpu()
        n_bad = int((~ok).sum())
        if n_bad and count_dropped:
            self.dropped_ctc += n_bad
            log.warning(
                "%s: dropped %d utterance(s) whose subsampled length cannot hold the transcript (total %d)",
                stage,
                n_bad,
                self.dropped_ctc,
            )
        if n_bad == len(ok):
            return None
        targets, target_lengths = batch.targets, batch.target_lengths
        if n_bad:  # keep the feasible rows (an index built on the CPU: no synchronisation)
            keep = ok.nonzero().squeeze(1).to(log_probs.device, non_blocking=True)
            log_probs, out_lengths = log_probs.index_select(0, keep), out_lengths.index_select(0, keep)
            targets, target_lengths = targets.index_select(0, keep), target_lengths.index_select(0, keep)
        with torch.autocast(device_type=log_probs.device.type, enabled=False):
            return F.ctc_loss(
                log_probs.float().transpose(0, 1),
                targets,
                out_lengths,
                target_lengths,
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
        loss = self.ctc_loss(logits.float().log_softmax(-1), out_lengths, batch)
        if loss is None:
            return None
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch))
        self.log("train/dropped_ctc", float(self.dropped_ctc), batch_size=len(batch))
        return loss

    # ---------------------------------------------------------------- validation (greedy)
    def validation_step(self, batch: Batch | None, batch_idx: int) -> None:
        if batch is None:
            return
        log_probs, out_lengths = self(batch.wave, batch.wave_lengths)
        loss = self.ctc_loss(log_probs, out_lengths, batch, count_dropped=False, stage="val")
        if loss is not None:
            self.log("val/loss", loss, batch_size=len(batch), sync_dist=True)
        self._eval.setdefault("refs", []).extend(batch.texts)
        self._eval.setdefault("greedy", []).extend(greedy_decode(log_probs, out_lengths, self.vocab))

    def on_validation_epoch_start(self) -> None:
        self._eval = {}

    def on_validation_epoch_end(self) -> None:
        store, self._eval = self._eval, {}
        if not store.get("refs"):
            return
        wer, cer = (
            word_errors(store["refs"], store["greedy"]).rate,
            char_errors(store["refs"], store["greedy"]).rate,
        )
        self.log("val/wer_greedy", wer)
        self.log("val/cer_greedy", cer)
        self.log("val/wer", wer, prog_bar=True)
        self.log("val/cer", cer)

    # ---------------------------------------------------------------- test (trainer.predict)
    def predict_step(
        self, batch: Batch | None, batch_idx: int, dataloader_idx: int = 0
    ) -> BatchEmissions | None:
        """One batch's emissions for the test (and tuning) scoring of :mod:`lstm_seq.audio.decoding.evaluate`:
        float32 log-posteriors and lengths on the CPU, the references and the mean CTC loss; None for a batch
        the loader could not read."""
        if batch is None:
            return None
        log_probs, out_lengths = self(batch.wave, batch.wave_lengths)
        loss = self.ctc_loss(log_probs, out_lengths, batch, count_dropped=False, stage="test")
        return BatchEmissions(
            log_probs.float().cpu(),
            out_lengths.cpu(),
            list(batch.texts),
            list(batch.paths),
            None if loss is None else float(loss),
            len(batch),
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CKPT_KEY] = self.decoding.to_dict()
        checkpoint["asr_dropped_ctc"] = self.dropped_ctc  # a resumed run goes on counting

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.decoding = DecodingSetup.from_checkpoint(checkpoint)
        self.dropped_ctc = int(checkpoint.get("asr_dropped_ctc", 0))

    def on_fit_start(self) -> None:
        # cmvn="global": the statistics come from the training split, once (a resumed run has restored them)
        if self.featurizer.fitted:
            return
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "dataset"):
            log.warning("features.cmvn='global' and no data module to compute the statistics: mean 0, std 1")
            return
        log.info(
            "global CMVN statistics from %d training frames",
            fit_dataset_cmvn(self.featurizer, dm.dataset("train")),
        )

    # ---------------------------------------------------------------- optimisation
    def configure_optimizers(self) -> Any:
        """AdamW and the learning-rate schedule of ``optim`` (lstm_seq/training/optim.py)."""
        return optimizer_and_schedule(
            self.parameters(), self.optim_cfg, self.trainer.estimated_stepping_batches
        )
