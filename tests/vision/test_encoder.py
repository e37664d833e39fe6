"""CNN encoder: grid + pooled outputs for every backbone, frozen mode, weights from a file, no downloads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from lstm_seq.vision.encoder import BACKBONES, CNNEncoder


@pytest.mark.parametrize("name", BACKBONES)
def test_backbones_give_grid_and_pooled(name: str) -> None:
    enc = CNNEncoder(name, output_stride=16).eval()
    with torch.no_grad():
        grid, pooled = enc(torch.randn(2, 3, 64, 64))
    assert grid.shape == (2, 16, enc.out_channels)  # 64 / 16 = 4 → 4×4 cells
    assert pooled.shape == (2, enc.out_channels)
    assert torch.allclose(pooled, grid.mean(1))


def test_output_stride_and_grid_size() -> None:
    enc = CNNEncoder("resnet18", output_stride=32, grid_size=1)
    assert enc.stride == 32 and enc.out_channels == 512
    grid, _ = enc(torch.randn(1, 3, 96, 96))
    assert grid.shape == (1, 1, 512)
    with pytest.raises(ValueError, match=r"encoder\.name"):
        CNNEncoder("vgg11")


def test_frozen_encoder_has_no_gradients_and_stays_in_eval() -> None:
    enc = CNNEncoder("resnet18", output_stride=16, frozen=True)
    enc.train()
    assert not enc.trunk.training
    assert not any(p.requires_grad for p in enc.parameters())
    grid, _ = enc(torch.randn(2, 3, 32, 32))
    assert not grid.requires_grad
    live = CNNEncoder("resnet18", output_stride=16)
    assert live.trunk.training and live(torch.randn(2, 3, 32, 32))[0].requires_grad


def test_weights_from_local_file(tmp_path: Path) -> None:
    torch.manual_seed(1)
    src = torchvision.models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save(src.state_dict(), path)
    enc = CNNEncoder("resnet18", weights=str(path), output_stride=16)
    assert torch.equal(enc.trunk[0].weight, src.conv1.weight)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CNNEncoder("resnet18", weights=str(tmp_path / "missing.pth"))


def test_named_weights_never_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not in the torch cache"):
        CNNEncoder("resnet18", weights="IMAGENET1K_V1")
    assert not any(tmp_path.rglob("*.pth"))
    with pytest.raises(ValueError, match="not a torchvision weight name"):
        CNNEncoder("resnet18", weights="NO_SUCH_WEIGHTS")
