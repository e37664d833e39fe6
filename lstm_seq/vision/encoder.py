"""CNN image encoder: a torchvision backbone cut at a chosen output stride, returning a spatial grid of
features (B, L = h·w, C) for attention and a pooled vector (B, C) for show-and-tell.

Weights: ``None`` (random init, trained from scratch), a local weights file (a state dict of the full
torchvision model, or of this encoder's trunk), or a torchvision weight name such as ``"DEFAULT"`` or
``"IMAGENET1K_V1"`` that is used only when the file is already in the torch hub cache — nothing is
downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torchvision
from torch import nn

BACKBONES = (
    "resnet18",
    "resnet34",
    "resnet50",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "efficientnet_b0",
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _trunk_modules(model: nn.Module, name: str) -> list[tuple[str, nn.Module]]:
    if name.startswith("resnet"):
        names = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
        return [(n, getattr(model, n)) for n in names]
    features = model.features  # type: ignore[attr-defined]
    return [(f"features.{i}", m) for i, m in enumerate(features)]


def _named_weights(name: str, weights: str) -> dict[str, torch.Tensor]:
    """A torchvision weight enum's state dict, from the local torch hub cache only."""
    try:
        enum = torchvision.models.get_model_weights(name)
        w = enum.DEFAULT if weights == "DEFAULT" else enum[weights]
    except (KeyError, ValueError) as exc:
        raise ValueError(f"encoder.weights={weights!r}: not a torchvision weight name for {name}") from exc
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(w.url)
    if not cached.exists():
        raise FileNotFoundError(
            f"encoder.weights={weights!r}: {cached} is not in the torch cache and nothing is downloaded here; "
            "fetch it once with torchvision, pass a local weights file, or use weights=null"
        )
    return torch.load(cached, map_location="cpu", weights_only=True)


class CNNEncoder(nn.Module):
    """torchvision backbone → grid features.

    Args:
        name: one of :data:`BACKBONES`.
        weights: None, a path to a weights file, or a torchvision weight name (cache only).
        output_stride: keep the trunk up to the last module whose stride is ≤ this (8, 16 or 32);
            e.g. resnet18 with 16 ends at layer3 (a 4×4 grid for a 64×64 input).
        grid_size: if set, adaptive-average-pool the grid to at most grid_size × grid_size.
        frozen: no gradients, always in eval mode (BatchNorm uses its running statistics).
    """

    def __init__(
        self,
        name: str = "resnet18",
        weights: str | None = None,
        output_stride: int = 32,
        grid_size: int | None = None,
        frozen: bool = False,
    ) -> None:
        super().__init__()
        if name not in BACKBONES:
            raise ValueError(f"encoder.name={name!r}: expected one of {BACKBONES}")
        model = torchvision.models.get_model(name, weights=None)
        if weights:
            p = Path(os.path.expanduser(weights))
            if p.suffix in (".pt", ".pth", ".bin", ".ckpt") or p.exists():
                if not p.exists():
                    raise FileNotFoundError(f"encoder.weights: file {p} does not exist")
                state = torch.load(p, map_location="cpu", weights_only=True)
                state = state.get("state_dict", state) if isinstance(state, dict) else state
            else:
                state = _named_weights(name, weights)
            missing, _ = model.load_state_dict(state, strict=False)
            trunk_missing = [k for k in missing if not k.startswith(("fc.", "classifier."))]
            if trunk_missing:
                raise ValueError(
                    f"encoder.weights={weights!r} lacks {len(trunk_missing)} trunk keys, e.g. {trunk_missing[:3]}"
                )
        modules = _trunk_modules(model, name)
        kept: list[tuple[str, nn.Module]] = []
        probe = torch.zeros(1, 3, 64, 64)
        model.eval()
        with torch.no_grad():
            for mname, m in modules:
                out = m(probe)
                if 64 // out.shape[-1] > output_stride:
                    break
                kept.append((mname, m))
                probe = out
        if not kept:
            raise ValueError(f"encoder.output_stride={output_stride} is smaller than {name}'s first stride")
        self.name = name
        self.trunk = nn.Sequential(*[m for _, m in kept])
        self.out_channels = int(probe.shape[1])
        self.stride = 64 // int(probe.shape[-1])
        self.pool = nn.AdaptiveAvgPool2d(grid_size) if grid_size else None
        self.frozen = frozen
        if frozen:
            self.trunk.requires_grad_(False)
        self.train()

    def train(self, mode: bool = True) -> CNNEncoder:
        super().train(mode)
        if self.frozen:
            self.trunk.eval()
        return self

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args:
            images: (B, 3, S, S) normalised.

        Returns:
            grid (B, L, C) with L = h·w, and pooled (B, C).
        """
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            fmap = self.trunk(images)
        if self.pool is not None and (
            fmap.shape[-1] > self.pool.output_size or fmap.shape[-2] > self.pool.output_size
        ):  # type: ignore[operator]
            fmap = self.pool(fmap)
        grid = fmap.flatten(2).transpose(1, 2)
        return grid, grid.mean(dim=1)
