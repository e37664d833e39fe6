"""Helpers shared by the LSTM tests: float64 twins of torch.nn.LSTM and strict comparisons."""

from __future__ import annotations

import torch
from torch import Tensor, nn

import lstm_seq

RTOL = 1e-9  # relative agreement asked of every backend against torch.nn.LSTM in float64
ATOL = 1e-12  # absolute slack for elements that are (nearly) zero


def twins(
    backend: str, input_size: int = 4, hidden_size: int = 5, seed: int = 0, **kw: object
) -> tuple[nn.LSTM, lstm_seq.LSTM]:
    """A float64 torch.nn.LSTM and an lstm_seq.LSTM holding the same weights (loaded by state_dict)."""
    torch.manual_seed(seed)
    ref = nn.LSTM(input_size, hidden_size, **kw).double()  # type: ignore[arg-type]
    ours = lstm_seq.LSTM(input_size, hidden_size, backend=backend, **kw).double()  # type: ignore[arg-type]
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def assert_close(actual: Tensor, expected: Tensor, what: str = "") -> None:
    torch.testing.assert_close(actual, expected, rtol=RTOL, atol=ATOL, msg=lambda m: f"{what}: {m}")
