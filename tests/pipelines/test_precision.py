"""``trainer.precision: auto``: bf16 mixed precision on a GPU, full fp32 on the CPU (the resolving rule; the
GPU run itself is in the ``gpu`` tier and benchmarks/gpu_check.sh)."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from pipelines._hydra import make_trainer, resolve_precision


@pytest.mark.parametrize(
    ("accelerator", "cuda", "want"),
    [("gpu", False, "bf16-mixed"), ("cuda", False, "bf16-mixed"), ("cpu", True, "32-true"),
     ("auto", True, "bf16-mixed"), ("auto", False, "32-true"), ("mps", True, "32-true")],
)  # fmt: skip
def test_auto_is_bf16_mixed_exactly_when_the_run_is_on_a_gpu(accelerator: str, cuda: bool, want: str) -> None:
    assert resolve_precision("auto", accelerator, cuda_available=cuda) == want


@pytest.mark.parametrize("given", ["32-true", "16-mixed", "bf16-mixed", "64-true", 32])
def test_an_explicit_precision_is_kept(given: object) -> None:
    for accelerator in ("cpu", "gpu", "auto"):
        assert resolve_precision(given, accelerator, cuda_available=True) == given


def test_the_trainer_gets_the_resolved_precision(tmp_path: Path) -> None:
    node = {
        "_target_": "lightning.pytorch.Trainer",
        "accelerator": "cpu",
        "precision": "auto",
        "max_epochs": 1,
    }
    trainer = make_trainer(OmegaConf.create(node), tmp_path, [], False)
    assert trainer.precision == "32-true"
    node["precision"] = "bf16-mixed"  # what auto gives on a GPU, here on the CPU (autocast to bf16)
    assert make_trainer(OmegaConf.create(node), tmp_path, [], False).precision == "bf16-mixed"
