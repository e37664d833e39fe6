"""Checkpoints written before the shared optimiser settings (lstm_seq/training/optim.py) load: a captioner's
flat hyper-parameters (every setting at the top level, ``lr``/``weight_decay``/``warmup_steps`` among them) and
a recogniser's ``optim`` of three keys. They come back with the same weights, search settings and schedule."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch

from lstm_seq.audio.module import ASRModule
from lstm_seq.training.checkpoint_io import save_atomic
from lstm_seq.training.optim import OptimConfig
from lstm_seq.training.schedule import OneCycle, WarmupCosine
from lstm_seq.vision.data.images import ImageTransform
from lstm_seq.vision.module import CaptionModule
from lstm_seq.vision.vocab import Vocabulary

# the hyper-parameters of a caption checkpoint before the groups, as the default run wrote them (less vocab,
# transform, encoder and decoder)
FLAT_SETTINGS = {
    "lr": 2e-3, "weight_decay": 1e-4, "warmup_steps": 50, "att_reg": 0.1, "sampling_max": 0.0,
    "sampling_start_epoch": 2, "sampling_ramp_epochs": 4, "beam_size": 3, "max_len": 24, "length_penalty": 0.0,
    "word_dropout": 0.0, "no_repeat_ngram": 2, "repeat_penalty": 2.0, "coverage_penalty": 0.0,
    "repeat_words": ["circle", "square"],
}  # fmt: skip
OLD_OPTIM = ("lr", "weight_decay", "warmup_steps")


def _captioner() -> CaptionModule:
    torch.manual_seed(0)
    vocab = Vocabulary.build(["a red circle", "a blue square left of a red circle"], 1)
    decoder = {"variant": "attention", "embed_dim": 8, "hidden_size": 16, "attention_dim": 8}
    model = {k: v for k, v in FLAT_SETTINGS.items() if k not in OLD_OPTIM}
    optim = {k: FLAT_SETTINGS[k] for k in OLD_OPTIM}
    encoder = {"name": "resnet18", "output_stride": 16}
    return CaptionModule(
        vocab.to_dict(), ImageTransform(size=32).to_dict(), encoder, decoder, model, optim
    ).eval()


def test_a_caption_checkpoint_with_flat_hyper_parameters_loads(tmp_path: Path) -> None:
    module = _captioner()
    hp = module.hparams
    flat = {k: hp[k] for k in ("vocab", "transform", "encoder", "decoder")} | FLAT_SETTINGS
    save_atomic({"state_dict": module.state_dict(), "hyper_parameters": flat}, tmp_path / "old.ckpt")

    back = CaptionModule.load(tmp_path / "old.ckpt")
    assert back.settings == dict(hp["model"])
    assert back.optim_cfg == OptimConfig(
        schedule="warmup_cosine", lr=2e-3, weight_decay=1e-4, warmup_steps=50
    )
    assert set(back.hparams) == {
        "vocab",
        "transform",
        "encoder",
        "decoder",
        "model",
        "optim",
    }  # written grouped
    images = torch.randn(2, 3, 32, 32)
    assert torch.equal(back.generate(images).tokens, module.generate(images).tokens)
    back._trainer = SimpleNamespace(estimated_stepping_batches=300)
    sched = back.configure_optimizers()["lr_scheduler"]["scheduler"]
    assert isinstance(sched, WarmupCosine) and sched.warmup_steps == 50 and sched.base_lrs[0] == 2e-3


def test_a_caption_checkpoint_in_groups_round_trips(tmp_path: Path) -> None:
    module = _captioner()
    save_atomic(
        {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, tmp_path / "c.ckpt"
    )
    back = CaptionModule.load(tmp_path / "c.ckpt")
    assert back.settings == module.settings and back.optim_cfg == module.optim_cfg


def test_an_asr_checkpoint_with_three_optimiser_keys_loads(tmp_path: Path) -> None:
    module = ASRModule(model={"hidden_size": 8, "num_layers": 1})
    hp = dict(module.hparams) | {"optim": {"lr": 2e-3, "weight_decay": 1e-2, "pct_start": 0.2}}
    save_atomic({"state_dict": module.state_dict(), "hyper_parameters": hp}, tmp_path / "old.ckpt")
    back = ASRModule.load(tmp_path / "old.ckpt")
    assert back.optim_cfg == OptimConfig(schedule="onecycle", lr=2e-3, weight_decay=1e-2, pct_start=0.2)
    back._trainer = SimpleNamespace(estimated_stepping_batches=100)
    sched = back.configure_optimizers()["lr_scheduler"]["scheduler"]
    assert isinstance(sched, OneCycle) and sched.pct_start == 0.2
