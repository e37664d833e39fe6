"""The test split's emissions through ``trainer.predict``: :meth:`ASRModule.predict_step` gives each batch's
log-posteriors, lengths, references and CTC loss, equal to a direct forward in eval mode, and
:meth:`Emissions.from_batches` gathers them in loader order, weighting the loss as the evaluation loop did."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from lstm_seq.audio.data.datasets import Batch
from lstm_seq.audio.decoding.emissions import BatchEmissions, Emissions
from lstm_seq.audio.decoding.evaluate import collect_emissions, evaluate
from lstm_seq.audio.module import ASRModule
from lstm_seq.audio.vocab import CharVocab


def _module() -> ASRModule:
    torch.manual_seed(0)
    m = ASRModule(model={"hidden_size": 8, "num_layers": 2, "conv_channels": 2})
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # away from the initialisation, so that the outputs differ between utterances
        for p in m.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    return m


def _batch(v: CharVocab, texts: list[str], samples: list[int], seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    wave = torch.randn(len(texts), max(samples), generator=g)
    for i, n in enumerate(samples):
        wave[i, n:] = 0
    ids = [v.encode(t) for t in texts]
    targets = torch.zeros(len(texts), max(map(len, ids)), dtype=torch.long)
    for i, t in enumerate(ids):
        targets[i, : len(t)] = torch.tensor(t)
    lengths = torch.tensor([len(t) for t in ids])
    return Batch(
        wave, torch.tensor(samples), targets, lengths, texts, [f"{seed}-{i}.wav" for i in range(len(texts))]
    )


def _batches(v: CharVocab) -> list[Batch | None]:
    return [
        _batch(v, ["ab", "c d"], [8000, 6000], 0),
        None,  # a batch the loader could not read
        _batch(v, ["x" * 200], [4000], 1),  # 200 characters cannot fit 0.25 s: no feasible utterance, no loss
        _batch(v, ["hello", "e", "fg"], [4000, 9000, 5000], 2),
    ]


def test_predict_step_is_the_forward_in_eval_mode() -> None:
    m = _module().train()
    b = _batches(m.vocab)[0]
    with torch.no_grad():
        got = m.eval().predict_step(b, 0)
        lp, n = m(b.wave, b.wave_lengths)
        loss = m.ctc_loss(lp, n, b, count_dropped=False)
    assert isinstance(got, BatchEmissions)
    assert (
        torch.equal(got.log_probs, lp)
        and got.log_probs.dtype == torch.float32
        and torch.equal(got.lengths, n)
    )
    assert got.refs == b.texts and got.paths == b.paths and got.size == 2 and got.loss == float(loss)
    assert m.predict_step(None, 1) is None
    assert m.dropped_ctc == 0  # the test does not count dropped utterances as training does


def test_collected_emissions_equal_a_direct_forward_per_batch() -> None:
    m = _module().train()
    batches = _batches(m.vocab)
    em = collect_emissions(m, DataLoader(batches, batch_size=None, collate_fn=lambda b: b), "cpu")
    assert m.training  # restored
    real = [b for b in batches if b is not None]
    assert em.refs == [t for b in real for t in b.texts] and em.paths == [p for b in real for p in b.paths]
    assert len(em.batches) == 3
    m.eval()
    loss_sum, weight = 0.0, 0
    with torch.no_grad():
        for (lp, n), b in zip(em.batches, real, strict=True):
            expected, lengths = m(b.wave, b.wave_lengths)
            assert torch.equal(lp, expected) and torch.equal(n, lengths)  # bitwise: the same computation
            loss = m.ctc_loss(expected, lengths, b, count_dropped=False)
            if loss is not None:
                loss_sum, weight = loss_sum + float(loss) * len(b), weight + len(b)
    assert (
        weight == 5 and em.loss_weight == weight and em.loss_sum == loss_sum
    )  # the 200-character batch: none
    assert len(set(em.greedy(m.vocab))) > 1  # outputs that differ between utterances

    metrics, rows = evaluate(em, m.vocab)
    assert metrics["test/utterances"] == 6 and metrics["test/loss"] == pytest.approx(loss_sum / 5)
    assert [r["path"] for r in rows] == em.paths and [r["greedy"] for r in rows] == em.greedy(m.vocab)


def test_from_batches_skips_none_and_weights_the_loss_by_batch_size() -> None:
    lp = torch.zeros(1, 2, 3)
    one = BatchEmissions(lp, torch.tensor([2]), ["a"], ["a.wav"], 3.0, 1)
    two = BatchEmissions(lp.expand(2, 2, 3), torch.tensor([2, 1]), ["b", "c"], ["b.wav", "c.wav"], 1.5, 2)
    none = BatchEmissions(lp, torch.tensor([1]), ["d"], ["d.wav"], None, 1)
    em = Emissions.from_batches([one, None, two, none])
    assert em.refs == ["a", "b", "c", "d"] and em.paths == ["a.wav", "b.wav", "c.wav", "d.wav"]
    assert em.loss_sum == 6.0 and em.loss_weight == 3 and em.loss == 2.0
    assert [x[0] for x in em.batches] == [one.log_probs, two.log_probs, none.log_probs]
    assert Emissions.from_batches([]).loss is None
