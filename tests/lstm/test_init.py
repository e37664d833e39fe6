"""Initialisation: nn.LSTM's default, forget_bias and chrono_init."""

from __future__ import annotations

import math

import pytest
import torch

import lstm_seq


def _uniform_in_one_over_sqrt_h(m: lstm_seq.LSTM) -> bool:
    """Every parameter within ±1/√H and spread over the whole range (nn.LSTM's initialisation)."""
    bound = 1 / math.sqrt(m.hidden_size)
    return all(bool(bound >= p.abs().max() > 0.9 * bound) for p in m.parameters())


def test_default_is_uniform_in_one_over_sqrt_h() -> None:
    torch.manual_seed(0)
    m = lstm_seq.LSTM(10, 64, num_layers=2)
    assert _uniform_in_one_over_sqrt_h(m)
    # controls: the check refuses a bound of 1/√I (I = 10 ≠ H) and a normal draw of the same scale
    wrong = lstm_seq.LSTM(10, 64, num_layers=2)
    with torch.no_grad():
        for p in wrong.parameters():
            p.uniform_(-1 / math.sqrt(10), 1 / math.sqrt(10))
    assert not _uniform_in_one_over_sqrt_h(wrong)
    with torch.no_grad():
        for p in wrong.parameters():
            p.normal_(0.0, 1 / math.sqrt(64))
    assert not _uniform_in_one_over_sqrt_h(wrong)


def test_forget_bias() -> None:
    m = lstm_seq.LSTM(3, 8, num_layers=2, bidirectional=True, forget_bias=3.0)
    for layer in range(2):
        for sfx in ("", "_reverse"):
            b_ih = getattr(m, f"bias_ih_l{layer}{sfx}")
            b_hh = getattr(m, f"bias_hh_l{layer}{sfx}")
            assert torch.all(b_ih[8:16] == 3.0) and torch.all(b_hh[8:16] == 0.0)
            assert b_ih[:8].abs().max() <= 1 / math.sqrt(8)  # other gates untouched


def test_chrono_init() -> None:
    torch.manual_seed(0)
    t_max = 100.0
    m = lstm_seq.LSTM(3, 256, chrono_init=t_max)
    b_f = m.bias_ih_l0[256:512]
    assert b_f.min() >= 0 and b_f.max() <= math.log(t_max - 1)
    assert b_f.std() > 0.5  # log-uniform, not constant
    torch.testing.assert_close(m.bias_ih_l0[:256], -b_f)
    assert torch.all(m.bias_hh_l0[:512] == 0)
    # gates i/f sum to a forget bias above 0 and input bias below: f_t ≈ 1 - 1/T at the start
    f = torch.sigmoid(b_f)
    assert (f > 0.5).all()


def test_init_option_errors() -> None:
    with pytest.raises(ValueError, match="exclusive"):
        lstm_seq.LSTM(3, 4, forget_bias=1.0, chrono_init=10)
    with pytest.raises(ValueError, match="bias=True"):
        lstm_seq.LSTM(3, 4, bias=False, forget_bias=1.0)
    with pytest.raises(ValueError, match="> 2"):
        lstm_seq.LSTM(3, 4, chrono_init=2)


@pytest.mark.parametrize(("init", "learns"), [({"forget_bias": 3.0}, True), ({}, False)])
def test_forget_bias_learns_long_memory_fast(init: dict, learns: bool) -> None:
    """Real behaviour, small: remember the first of T=12 symbols across random distractors. The
    control: with the default initialisation (nn.LSTM's) the same training stays near chance (0.25;
    0.26 when this was written), so the task does tell the two apart."""
    torch.manual_seed(0)
    lstm = lstm_seq.LSTM(4, 32, batch_first=True, **init)
    head = torch.nn.Linear(32, 4)
    opt = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-2)
    gen = torch.Generator().manual_seed(1)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        sym = torch.randint(0, 4, (n, 12), generator=gen)
        return torch.nn.functional.one_hot(sym, 4).float(), sym[:, 0]

    for _ in range(250):
        x, y = batch(64)
        _, (h, _) = lstm(x)
        loss = torch.nn.functional.cross_entropy(head(h[-1]), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = batch(512)
    with torch.no_grad():
        acc = (head(lstm(x)[1][0][-1]).argmax(-1) == y).float().mean().item()
    if learns:
        assert acc > 0.9, f"accuracy {acc:.2f}"
    else:
        assert acc < 0.5, f"accuracy {acc:.2f}: the default initialisation learned it too"
