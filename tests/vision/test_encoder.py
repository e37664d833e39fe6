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


def test_hue_pooled_trunk_ignores_hue_and_the_colour_path_sees_it() -> None:
    torch.manual_seed(0)
    enc = CNNEncoder("resnet18", output_stride=8, hue_pool=True, colour_channels=8).eval()
    assert enc.out_channels == 128 + 8
    img = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        grid, pooled = enc(img)
        shifted, _ = enc(img.roll(1, dims=1))  # red → green → blue → red: a hue rotation by 120°
    assert grid.shape == (2, 16, 136) and torch.allclose(pooled, grid.mean(1))
    assert torch.allclose(grid[..., :128], shifted[..., :128], atol=1e-5)  # trunk: same shapes, any hue
    assert not torch.allclose(grid[..., 128:], shifted[..., 128:], atol=1e-3)  # colour path: tells hues apart
    plain = CNNEncoder("resnet18", output_stride=8).eval()
    with torch.no_grad():
        assert not torch.allclose(plain(img)[0], plain(img.roll(1, dims=1))[0], atol=1e-3)


def test_hue_pooled_encoder_trains_both_paths() -> None:
    enc = CNNEncoder("resnet18", output_stride=16, hue_pool=True, colour_channels=4)
    grid, _ = enc(torch.randn(2, 3, 32, 32))
    grid.square().mean().backward()
    assert enc.trunk[0].weight.grad is not None and enc.trunk[0].weight.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.colour.parameters())
    frozen = CNNEncoder("resnet18", output_stride=16, hue_pool=True, colour_channels=4, frozen=True)
    assert not any(p.requires_grad for p in frozen.parameters())  # the colour path too (feature cache)
    assert not frozen(torch.randn(2, 3, 32, 32))[0].requires_grad


def test_hue_pool_keeps_loaded_first_conv_weights(tmp_path: Path) -> None:
    src = torchvision.models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save(src.state_dict(), path)
    enc = CNNEncoder("resnet18", weights=str(path), output_stride=16, hue_pool=True)
    assert torch.equal(enc.trunk[0].weight, src.conv1.weight)
    assert set(enc.state_dict()) == set(CNNEncoder("resnet18", output_stride=16).state_dict())
