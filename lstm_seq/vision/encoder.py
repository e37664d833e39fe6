"""CNN image encoder: a torchvision backbone cut at a chosen output stride, returning a spatial grid of
features (B, L = h·w, C) for attention and a pooled vector (B, C) for show-and-tell.

Optionally shape and colour are kept apart: the trunk's first convolution is hue-pooled (max over the three
cyclic RGB shifts, :class:`HuePooledConv2d`), so a shape learnt in some colours is recognised in any, and a
small per-pixel :class:`ColourPath` appended to the grid carries the colours. Without this, a from-scratch
trunk learns colour-specific shape detectors and never recognises a colour–shape pair absent from training.

Weights: ``None`` (random init, trained from scratch), a local weights file (a state dict of the full
torchvision model, or of this encoder's trunk), or a torchvision weight name such as ``"DEFAULT"`` or
``"IMAGENET1K_V1"`` that is used only when the file is already in the torch hub cache — nothing is
downloaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from lstm_seq.settings import at_least, check, one_of, positive

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


class HuePooledConv2d(nn.Conv2d):
    """A first convolution that sees the image under the three cyclic RGB shifts (hue rotations by 120°) and
    keeps, per output channel and position, the largest response: what it detects (edges, corners) no longer
    depends on which colour draws it, so shape features learnt on some colours carry over to others."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # conv(x shifted by k channels, W) = conv(x, W shifted by -k): one convolution with 3× the filters
        w = torch.cat([self.weight, self.weight.roll(-1, dims=1), self.weight.roll(-2, dims=1)])
        b = self.bias.repeat(3) if self.bias is not None else None
        out = self._conv_forward(x, w, b)  # (B, 3·K, h, w)
        return out.unflatten(1, (3, self.out_channels)).amax(1)


class ColourPath(nn.Module):
    """Colour features (two 1×1 convolutions on the image average-pooled 4×4, a third of the cost at full
    resolution) max-pooled to the grid: which colours each cell holds, for the colour words, next to a
    hue-pooled trunk that does not see colour."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, channels, 1), nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU()
        )

    def forward(self, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return F.adaptive_max_pool2d(self.net(F.avg_pool2d(images, 4, ceil_mode=True)), size)


@dataclass(frozen=True)
class EncoderConfig:
    """The image encoder (``conf/encoder``): :class:`CNNEncoder`'s settings plus the fine-tuning rate; stored in
    checkpoints."""

    name: str = one_of("resnet18", *BACKBONES)  # a torchvision classifier
    weights: str | None = (
        None  # None = from scratch | path/to/weights.pth | a torchvision weight name (torch cache)
    )
    output_stride: int = one_of(32, 8, 16, 32)  # cut the trunk where the stride reaches this: sets the grid
    grid_size: int | None = positive(None)  # adaptive-pool the grid to at most N×N
    frozen: bool = False  # no gradients, eval mode (BatchNorm running statistics)
    hue_pool: bool = False  # first conv max-pooled over the 3 cyclic RGB shifts: a trunk blind to hue
    colour_channels: int = at_least(0, 0)  # > 0: a per-pixel colour path of this width appended to the grid
    lr_factor: float = at_least(0, 1.0)  # encoder learning rate = optim.lr × lr_factor

    def __post_init__(self) -> None:
        check(self, "encoder.")


class CNNEncoder(nn.Module):
    """torchvision backbone → grid features.

    Args:
        name: one of :data:`BACKBONES`.
        weights: None, a path to a weights file, or a torchvision weight name (cache only).
        output_stride: keep the trunk up to the last module whose stride is ≤ this (8, 16 or 32);
            e.g. resnet18 with 16 ends at layer3 (a 4×4 grid for a 64×64 input).
        grid_size: if set, adaptive-average-pool the grid to at most grid_size × grid_size.
        frozen: no gradients (trunk and colour path), always in eval mode (BatchNorm uses its running
            statistics).
        hue_pool: the first convolution is a :class:`HuePooledConv2d` (the trunk does not see hue).
        colour_channels: if > 0, a :class:`ColourPath` of this many channels is appended to the grid.
    """

    def __init__(
        self,
        name: str = EncoderConfig.name,
        weights: str | None = EncoderConfig.weights,
        output_stride: int = EncoderConfig.output_stride,
        grid_size: int | None = EncoderConfig.grid_size,
        frozen: bool = EncoderConfig.frozen,
        hue_pool: bool = EncoderConfig.hue_pool,
        colour_channels: int = EncoderConfig.colour_channels,
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
        if hue_pool:
            first = modules[0][1] if isinstance(modules[0][1], nn.Conv2d) else modules[0][1][0]
            pooled_conv = HuePooledConv2d(
                first.in_channels, first.out_channels, first.kernel_size, first.stride, first.padding,
                bias=first.bias is not None,
            )  # fmt: skip
            pooled_conv.load_state_dict(first.state_dict())
            if isinstance(modules[0][1], nn.Conv2d):
                modules[0] = (modules[0][0], pooled_conv)
            else:
                modules[0][1][0] = pooled_conv
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
        self.hue_pool = hue_pool
        self.colour = ColourPath(colour_channels) if colour_channels > 0 else None
        self.out_channels = int(probe.shape[1]) + colour_channels
        self.stride = 64 // int(probe.shape[-1])
        self.pool = nn.AdaptiveAvgPool2d(grid_size) if grid_size else None
        self.frozen = frozen
        if frozen:  # the colour path too: cached features (lstm_seq.vision.feature_cache) could not follow it
            self.requires_grad_(False)
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
        if self.colour is not None:
            with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
                fmap = torch.cat([fmap, self.colour(images, fmap.shape[-2:])], 1)
        grid = fmap.flatten(2).transpose(1, 2)
        return grid, grid.mean(dim=1)
