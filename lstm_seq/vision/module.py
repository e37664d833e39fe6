"""The captioning LightningModule: CNN encoder + LSTM decoder, teacher-forced training with optional
scheduled sampling and doubly stochastic attention regularisation, greedy validation and beam-search test
with corpus BLEU/CIDEr-D. The vocabulary and the image transform are saved in the checkpoint's
hyper-parameters, so :meth:`CaptionModule.load` needs nothing but the checkpoint file.

The hyper-parameters are groups, as the speech module's: ``vocab``, ``transform``, ``encoder``, ``decoder``,
``model`` (:class:`CaptionModelConfig`: training and search settings) and ``optim``
(:class:`~lstm_seq.training.optim.OptimConfig`). Checkpoints written before the groups (every setting at the top
level, ``lr``/``weight_decay``/``warmup_steps`` among them) are read by :meth:`CaptionModule.load` too.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from lstm_seq.metrics.caption import caption_metrics
from lstm_seq.settings import at_least, check, from_dict, positive, prob
from lstm_seq.training.checkpoint_io import CheckpointError, load_checkpoint_file
from lstm_seq.training.optim import OptimConfig, optim_config, optimizer_and_schedule
from lstm_seq.vision.data.images import ImageTransform
from lstm_seq.vision.decoder import (
    AttentionDecoder,
    AttentionDecoderConfig,
    CaptionDecoder,
    DecoderConfig,
    ShowTellDecoder,
    doubly_stochastic_penalty,
)
from lstm_seq.vision.decoding.beam import Decoded, beam_search, greedy
from lstm_seq.vision.decoding.captioned import CaptionedBatch
from lstm_seq.vision.encoder import CNNEncoder, EncoderConfig
from lstm_seq.vision.vocab import Vocabulary

DECODERS: dict[str, type[CaptionDecoder]] = {"show_tell": ShowTellDecoder, "attention": AttentionDecoder}
# the caption search's settings among hparams["model"] (what export metadata and benchmarks record)
SEARCH_KEYS = ("beam_size", "max_len", "length_penalty", "no_repeat_ngram", "repeat_penalty", "coverage_penalty",
               "repeat_words")  # fmt: skip
DECODER_CONFIGS: dict[str, type[DecoderConfig]] = {
    "show_tell": DecoderConfig,
    "attention": AttentionDecoderConfig,
}


@dataclass(frozen=True)
class CaptionModelConfig:
    """Training and search settings of :class:`CaptionModule` (``model`` in conf/caption.yaml); stored in the
    checkpoint's hyper-parameters as ``model``. The optimiser's are ``optim`` (lstm_seq/training/optim.py)."""

    att_reg: float = at_least(0, 0.1)  # doubly stochastic attention penalty (attention decoder only)
    sampling_max: float = prob(0.0)  # scheduled sampling: top probability of feeding the model's own word
    sampling_start_epoch: int = at_least(0, 2)  # the probability rises linearly from 0 at this epoch …
    sampling_ramp_epochs: int = at_least(0, 4)  # … to sampling_max over this many epochs
    beam_size: int = positive(3)  # test-time beam search
    max_len: int = positive(24)  # longest generated caption (words)
    length_penalty: float = 0.0  # GNMT exponent; 0 = raw log-probability
    word_dropout: float = prob(0.0)  # training: input words → <unk> with this probability
    no_repeat_ngram: int = at_least(0, 2)  # n of the repeated-n-gram penalty in search (0 = off)
    # nats off a word that completes a repeated n-gram (inf = forbid)
    repeat_penalty: float = at_least(0, 2.0)
    coverage_penalty: float = at_least(0, 0.0)  # beta of the attention-coverage term of finished beams
    # penalise only repeated n-grams that end in these words (None: all)
    repeat_words: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        check(self, "model.")


# the top-level hyper-parameters of checkpoints written before the groups that were the optimiser's
_FLAT_OPTIM = ("lr", "weight_decay", "warmup_steps")
_GROUPS = ("vocab", "transform", "encoder", "decoder")


def grouped_hparams(hp: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's hyper-parameters in the grouped layout: those of the flat one (every training, search and
    optimiser setting at the top level, as written before the groups) are sorted into ``model`` and ``optim``
    (the schedule of those runs: ``warmup_cosine``); grouped ones are returned as they are."""
    if "model" in hp or "optim" in hp:
        return dict(hp)
    flat = {k: v for k, v in hp.items() if k not in _GROUPS}
    optim = {k: flat.pop(k) for k in _FLAT_OPTIM if k in flat}
    return {**{k: hp[k] for k in _GROUPS}, "model": flat, "optim": {"schedule": "warmup_cosine", **optim}}


class CaptionModule(pl.LightningModule):
    """Args:
    vocab: ``Vocabulary.to_dict()``.
    transform: ``ImageTransform.to_dict()``.
    encoder: kwargs of :class:`CNNEncoder` plus ``lr_factor`` (encoder lr = optim.lr · lr_factor).
    decoder: ``variant`` ("show_tell" | "attention") plus the decoder's kwargs.
    optim: the fields of :class:`~lstm_seq.training.optim.OptimConfig` (missing ones: ``PRESETS["warmup_cosine"]``,
        AdamW with linear warm-up then cosine decay to 0).
    model: the fields of :class:`CaptionModelConfig` (the others take its defaults; an unknown one raises
        :class:`ValueError`):
        att_reg: weight of the doubly stochastic attention penalty.
        sampling_max, sampling_start_epoch, sampling_ramp_epochs: scheduled sampling probability rises linearly
            from 0 at ``sampling_start_epoch`` to ``sampling_max`` over ``sampling_ramp_epochs``.
        beam_size, max_len, length_penalty: test-time search.
        no_repeat_ngram, repeat_penalty, coverage_penalty: against captions that repeat themselves (see
            :mod:`lstm_seq.vision.decoding.beam`): a word completing an n-gram already in the hypothesis loses
            ``repeat_penalty`` nats (greedy and beam); finished beams gain β · the coverage of the grid by their
            attention. 0 turns each off. ``repeat_words``: penalise only n-grams ending in these words (None: all).
        word_dropout: in training, each input word (not ``<start>``) becomes ``<unk>`` with this probability, so
            the next word must come from the image more than from the previous word.

    ``encoder`` and ``decoder`` are the fields of :class:`EncoderConfig` and :class:`DecoderConfig` /
    :class:`AttentionDecoderConfig` (missing ones take the defaults). Each group may also be its dataclass.
    ``hparams`` hold plain dicts and numbers only, so checkpoints load with ``weights_only=True``; the settings
    of ``hparams["model"]`` are read where they are used (:attr:`settings`), so changing one there (a search
    penalty, the beam size) applies at once.
    """

    def __init__(
        self,
        vocab: dict[str, Any],
        transform: dict[str, Any],
        encoder: dict[str, Any] | EncoderConfig,
        decoder: dict[str, Any] | DecoderConfig,
        model: dict[str, Any] | CaptionModelConfig | None = None,
        optim: dict[str, Any] | OptimConfig | None = None,
    ) -> None:
        super().__init__()
        cfg = from_dict(CaptionModelConfig, model, "model")
        self.optim_cfg = optim_config(optim, "warmup_cosine")
        enc = from_dict(EncoderConfig, encoder, "encoder")
        dec_dict = asdict(decoder) if isinstance(decoder, DecoderConfig) else dict(decoder)
        variant = dec_dict.get("variant", DecoderConfig.variant)
        if variant not in DECODERS:
            raise ValueError(f"decoder.variant={variant!r}: expected one of {sorted(DECODERS)}")
        dec = from_dict(DECODER_CONFIGS[variant], dec_dict, "decoder")
        rw = cfg.repeat_words
        self.save_hyperparameters({
            "vocab": vocab, "transform": transform, "encoder": asdict(enc), "decoder": asdict(dec),
            "model": {**asdict(cfg), "repeat_words": list(rw) if rw is not None else None},
            "optim": asdict(self.optim_cfg),
        })  # fmt: skip
        self.vocab = Vocabulary.from_dict(vocab)
        self.transform = ImageTransform.from_dict(transform)
        enc_kwargs = asdict(enc)
        self.encoder_lr_factor = float(enc_kwargs.pop("lr_factor"))
        self.encoder = CNNEncoder(**enc_kwargs)
        dec_kwargs = asdict(dec)
        dec_kwargs.pop("variant")
        self.decoder = DECODERS[variant](len(self.vocab), self.encoder.out_channels, **dec_kwargs)
        self._eval: dict[str, list[Any]] = {"hyps": [], "refs": [], "ids": []}
        # the test's beam (predict_step); None: hparams["model"]["beam_size"] (validation searches greedily)
        self.predict_beam_size: int | None = None

    # ---------------------------------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> CaptionModule:
        """Rebuild from a checkpoint alone (encoder weights come from the checkpoint, not from files).

        Read with ``weights_only=True`` (the file cannot run code); a missing, truncated, unsafe or
        non-captioning file raises :class:`~lstm_seq.training.checkpoint_io.CheckpointError` naming it.
        Checkpoints with flat hyper-parameters (written before the groups) are read too (:func:`grouped_hparams`)."""
        ckpt = load_checkpoint_file(path, map_location)
        hp = ckpt.get("hyper_parameters")
        if not isinstance(hp, dict) or not {"vocab", "transform", "encoder", "decoder"} <= set(hp):
            found = hp.get("pipeline", "no captioning hyper-parameters") if isinstance(hp, dict) else "none"
            raise CheckpointError(f"{path} is not an image-captioning checkpoint (found: {found})")
        hp = grouped_hparams(hp)
        hp["encoder"] = {**hp["encoder"], "weights": None}
        model = cls(**hp)
        model.load_state_dict(ckpt["state_dict"])
        return model.eval()

    # ---------------------------------------------------------------------------------------- forward
    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (B, 3, S, S) → grid (B, L, C), pooled (B, C); cached grids (B, L, C) pass through."""
        if images.dim() == 3:
            return images, images.mean(1)
        return self.encoder(images)

    @property
    def settings(self) -> dict[str, Any]:
        """The training and search settings: ``hparams["model"]`` (the fields of :class:`CaptionModelConfig`)."""
        return self.hparams["model"]

    def sampling_prob(self) -> float:
        hp = self.settings
        if hp["sampling_max"] <= 0 or self.current_epoch < hp["sampling_start_epoch"]:
            return 0.0
        frac = (self.current_epoch - hp["sampling_start_epoch"] + 1) / max(1, hp["sampling_ramp_epochs"])
        return float(hp["sampling_max"] * min(1.0, frac))

    def caption_loss(
        self, batch: dict[str, Any], sampling_prob: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced cross-entropy (a scalar) and the attention regulariser (a scalar) of a collated batch."""
        grid, pooled = self.features(batch["images"])
        idx = batch["img_index"]
        grid, pooled = grid.index_select(0, idx), pooled.index_select(0, idx)
        tokens = batch["tokens"]
        inp, tgt = tokens[:, :-1], tokens[:, 1:]
        hp = self.settings
        if self.training and hp["word_dropout"] > 0:
            drop = torch.rand(inp.shape, device=inp.device) < hp["word_dropout"]
            drop[:, 0] = False
            inp = torch.where(drop & (inp != self.vocab.pad_id), torch.full_like(inp, self.vocab.unk_id), inp)
        logits, alphas = self.decoder(grid, pooled, inp, sampling_prob)
        ce = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), tgt.reshape(-1), ignore_index=self.vocab.pad_id
        )
        reg = torch.zeros((), device=ce.device)
        if alphas is not None and hp["att_reg"] > 0:
            reg = hp["att_reg"] * doubly_stochastic_penalty(alphas.float(), tgt != self.vocab.pad_id)
        return ce, reg

    @torch.no_grad()
    def generate(
        self, images: torch.Tensor, beam_size: int | None = None, max_len: int | None = None
    ) -> Decoded:
        """Captions for a batch of normalised images (B, 3, S, S): beam search (``beam_size`` > 1) or greedy."""
        hp = self.settings
        k = hp["beam_size"] if beam_size is None else beam_size
        n = hp["max_len"] if max_len is None else max_len
        if k < 1 or n < 1:
            raise ValueError(f"beam_size and max_len must be ≥ 1 (beam_size 1: greedy), got {k} and {n}")
        grid, pooled = self.features(images)
        v = self.vocab
        rep: dict[str, Any] = {
            "no_repeat_ngram": int(hp["no_repeat_ngram"]),
            "repeat_penalty": float(hp["repeat_penalty"]),
        }
        if hp["repeat_words"]:
            only = torch.zeros(len(v), dtype=torch.bool)
            only[[v.stoi[w] for w in hp["repeat_words"] if w in v.stoi]] = True
            rep["repeat_only"] = only
        if k <= 1:
            return greedy(self.decoder, grid, pooled, v.start_id, v.end_id, v.pad_id, n, **rep)
        return beam_search(
            self.decoder, grid, pooled, v.start_id, v.end_id, v.pad_id, k, n, hp["length_penalty"],
            coverage_penalty=float(hp["coverage_penalty"]), **rep,
        )  # fmt: skip

    # ------------------------------------------------------------------------------------------- steps
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        if not batch["ids"]:  # every image of the batch failed to load (logged by the collate): no step
            return None
        p = self.sampling_prob()
        ce, reg = self.caption_loss(batch, p)
        bs = len(batch["ids"])
        self.log("train/loss", ce, prog_bar=True, batch_size=bs)
        if self.decoder.has_attention and self.settings["att_reg"] > 0:  # decided without reading the GPU
            self.log("train/att_reg", reg, batch_size=bs)
        if p > 0:
            self.log("train/sampling_prob", p, batch_size=bs)
        return ce + reg

    def caption_batch(self, batch: dict[str, Any], beam_size: int | None) -> CaptionedBatch:
        """One evaluation batch: the teacher-forced cross-entropy of its captions (a scalar tensor, the batch
        mean) and the captions decoded with ``beam_size`` (None: the model's own), one per image, with the ids and
        references. Validation (greedy) and :meth:`predict_step` (the test) both go through here."""
        ce, _ = self.caption_loss(batch)
        out = self.generate(batch["images"], beam_size=beam_size)
        return CaptionedBatch(
            list(batch["ids"]), self.vocab.decode_batch(out.tokens), list(batch["refs"]), ce
        )

    def _eval_step(self, batch: dict[str, Any], stage: str, beam: int) -> None:
        if not batch["ids"]:
            return
        said = self.caption_batch(batch, beam)
        self.log(f"{stage}/loss", said.loss, batch_size=len(said.ids))
        self._eval["hyps"].extend(said.hyps)
        self._eval["refs"].extend(said.refs)
        self._eval["ids"].extend(said.ids)

    def _eval_end(self, stage: str) -> dict[str, float]:
        hyps, refs = self._eval["hyps"], self._eval["refs"]
        metrics = caption_metrics(hyps, refs, prefix=f"{stage}/") if hyps else {}
        for k, val in metrics.items():
            self.log(k, val, prog_bar=k.endswith(("bleu4", "cider")))
        self._eval = {"hyps": [], "refs": [], "ids": []}
        return metrics

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "val", beam=1)

    def on_validation_epoch_end(self) -> None:
        self._eval_end("val")

    def predict_step(
        self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0
    ) -> CaptionedBatch | None:
        """The test's captions of one batch (beam search of :attr:`predict_beam_size`), scored over the whole
        split by :func:`lstm_seq.vision.recipe.evaluate`; None for a batch without a readable image."""
        if not batch["ids"]:
            return None
        return self.caption_batch(batch, self.predict_beam_size)

    # ------------------------------------------------------------------------------------- optimiser
    def configure_optimizers(self) -> Any:
        """AdamW and the learning-rate schedule of ``optim`` (lstm_seq/training/optim.py); the encoder's
        parameters (when it trains) at ``encoder.lr_factor`` × the decoder's learning rate."""
        groups: list[dict[str, Any]] = [{"params": [p for p in self.decoder.parameters() if p.requires_grad]}]
        enc_params = [p for p in self.encoder.parameters() if p.requires_grad]
        if enc_params and self.encoder_lr_factor > 0:
            groups.append({"params": enc_params, "lr_factor": self.encoder_lr_factor})
        return optimizer_and_schedule(groups, self.optim_cfg, self.trainer.estimated_stepping_batches)
