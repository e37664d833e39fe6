"""The acoustic model: optional 2-D conv subsampling → LayerNorm → ``lstm_seq.LSTM`` → linear → CTC logits.

Shapes: ``forward(feats (B, T, F), frames (B,)) -> (logits (B, T', V), out_frames (B,))`` with
``T' = ceil(T / subsample)``. Padded frames are zero going in and are masked after each conv, so
an utterance gives the same logits alone or in a padded batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from lstm_seq import LSTM
from lstm_seq.settings import check, from_dict, one_of, positive, prob


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the acoustic model, with their defaults and rules (``conf/model`` overrides some); stored in
    checkpoints."""

    subsample: int = one_of(4, 1, 2, 4)  # time reduction by the conv front: 1 (no conv), 2 or 4
    conv_channels: int = positive(16)  # channels of each 3×3 stride-2 conv
    hidden_size: int = positive(128)  # LSTM units per direction
    num_layers: int = positive(2)
    bidirectional: bool = True  # False for a streaming-friendly unidirectional model
    dropout: float = prob(0.1)  # between LSTM layers and before the output layer
    forget_bias: float | None = 1.0  # LSTM forget-gate bias at init (None = PyTorch default)
    lstm_backend: str = "auto"  # lstm_seq.LSTM backend

    def __post_init__(self) -> None:
        check(self, "model.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """From :meth:`to_dict` (a checkpoint's ``model``); an unknown key raises :class:`ValueError`."""
        return from_dict(cls, d, "model")


def _mask_time(x: Tensor, lengths: Tensor, dim: int) -> Tensor:
    """Zero positions ``>= lengths`` along ``dim`` (batch is dim 0)."""
    t = torch.arange(x.shape[dim], device=x.device)
    mask = t[None, :] < lengths[:, None]  # (B, T)
    shape = [x.shape[0]] + [1] * (x.dim() - 1)
    shape[dim] = x.shape[dim]
    return x * mask.view(shape).to(x.dtype)


class ConvSubsampling(nn.Module):
    """``log2(factor)`` Conv2d(3×3, stride 2, padding 1) + ReLU layers over (time, feature).

    ``forward(x (B, T, F), lengths (B,)) -> (B, ceil(T/factor), C·F'), lengths'``.
    """

    def __init__(self, in_features: int, factor: int, channels: int) -> None:
        super().__init__()
        if factor not in (1, 2, 4):
            raise ValueError(f"model.subsample must be 1, 2 or 4, got {factor}")
        n = {1: 0, 2: 1, 4: 2}[factor]
        self.convs = nn.ModuleList(
            nn.Conv2d(1 if i == 0 else channels, channels, 3, stride=2, padding=1) for i in range(n)
        )
        f = in_features
        for _ in range(n):
            f = (f - 1) // 2 + 1
        self.out_features = channels * f if n else in_features

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        if not self.convs:
            return x, lengths
        y = x.unsqueeze(1)  # (B, 1, T, F)
        for conv in self.convs:
            y = torch.relu(conv(y))
            lengths = (lengths - 1).div(2, rounding_mode="floor") + 1
            y = _mask_time(y, lengths, dim=2)
        b, c, t, f = y.shape
        return y.permute(0, 2, 1, 3).reshape(b, t, c * f), lengths


class AcousticModel(nn.Module):
    """Conv subsampling → bidirectional (or unidirectional) LSTM → linear over the vocabulary.

    Args:
        in_features: feature size F.
        vocab_size: output classes V (blank included).
        cfg: sizes.
    """

    def __init__(self, in_features: int, vocab_size: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.subsample = ConvSubsampling(in_features, cfg.subsample, cfg.conv_channels)
        self.norm = nn.LayerNorm(self.subsample.out_features)
        self.lstm = LSTM(
            self.subsample.out_features,
            cfg.hidden_size,
            num_layers=cfg.num_layers,
            batch_first=True,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
            bidirectional=cfg.bidirectional,
            forget_bias=cfg.forget_bias,
            backend=cfg.lstm_backend,
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.output = nn.Linear(cfg.hidden_size * (2 if cfg.bidirectional else 1), vocab_size)

    def forward(self, feats: Tensor, frames: Tensor) -> tuple[Tensor, Tensor]:
        x, lengths = self.subsample(feats, frames)  # (B, T', F')
        lengths = lengths.clamp(min=1)
        x = _mask_time(self.norm(x), lengths, dim=1)
        y, _ = self.lstm(x, lengths=lengths.cpu())  # (B, T', D·H)
        return self.output(self.dropout(y)), lengths
