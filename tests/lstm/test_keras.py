"""LSTM.from_keras against a NumPy implementation of Keras's LSTM equations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lstm_seq


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def keras_lstm(x: np.ndarray, kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Keras LSTM (activation tanh, recurrent_activation sigmoid, return_sequences=True).

    x: (B, T, I); kernel (I, 4U); recurrent (U, 4U); bias (4U,); gates in Keras order i, f, c, o.
    Returns (B, T, U)."""
    units = recurrent.shape[0]
    h = np.zeros((x.shape[0], units))
    c = np.zeros_like(h)
    out = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent + bias
        zi, zf, zc, zo = (z[:, k * units : (k + 1) * units] for k in range(4))
        i, f, o = _sigmoid(zi), _sigmoid(zf), _sigmoid(zo)
        c = f * c + i * np.tanh(zc)
        h = o * np.tanh(c)
        out.append(h)
    return np.stack(out, axis=1)


@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_seed_example_shape(backend: str) -> None:
    """The seed example: Keras `LSTM(50, input_shape=(100, 1))`, i.e. I=1, U=50, T=100."""
    rng = np.random.default_rng(0)
    kernel = rng.normal(0, 0.3, (1, 200))
    recurrent = rng.normal(0, 0.1, (50, 200))
    bias = rng.normal(0, 0.1, 200)
    x = rng.normal(size=(4, 100, 1))
    m = lstm_seq.LSTM.from_keras(kernel, recurrent, bias, dtype=torch.float64, backend=backend)
    assert m.batch_first and m.input_size == 1 and m.hidden_size == 50
    out, (h_n, _) = m(torch.from_numpy(x))
    expected = keras_lstm(x, kernel, recurrent, bias)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-9, atol=1e-12)
    # Keras's default return_sequences=False output is the last h.
    np.testing.assert_allclose(h_n[-1].detach().numpy(), expected[:, -1], rtol=1e-9, atol=1e-12)


def test_float32_and_no_bias() -> None:
    rng = np.random.default_rng(1)
    kernel = rng.normal(0, 0.5, (3, 16)).astype(np.float32)
    recurrent = rng.normal(0, 0.5, (4, 16)).astype(np.float32)
    x = rng.normal(size=(2, 7, 3)).astype(np.float32)
    m = lstm_seq.LSTM.from_keras(kernel, recurrent, None)
    assert not m.bias
    out, _ = m(torch.from_numpy(x))
    np.testing.assert_allclose(
        out.detach().numpy(), keras_lstm(x, kernel, recurrent, np.zeros(16)), rtol=1e-5, atol=1e-6
    )


def test_bad_keras_arrays_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"kernel \(I, 4H\)"):
        lstm_seq.LSTM.from_keras(np.zeros((3, 16)), np.zeros((5, 16)), np.zeros(16))
    with pytest.raises(ValueError, match=r"bias of shape \(16,\)"):
        lstm_seq.LSTM.from_keras(np.zeros((3, 16)), np.zeros((4, 16)), np.zeros(12))
    with pytest.raises(ValueError, match="hard_sigmoid"):
        lstm_seq.LSTM.from_keras(np.zeros((3, 16)), np.zeros((4, 16)), recurrent_activation="hard_sigmoid")
