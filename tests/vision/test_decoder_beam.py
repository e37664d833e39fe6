"""Decoders on lstm_seq.LSTM, teacher forcing, scheduled sampling, greedy and batched beam search."""

from __future__ import annotations

import pytest
import torch

import lstm_seq
from lstm_seq.vision.decoder import AttentionDecoder, ShowTellDecoder, doubly_stochastic_penalty
from lstm_seq.vision.decoding.beam import (
    beam_search,
    coverage_score,
    greedy,
    length_penalty,
    repeated_ngram_mask,
)
from lstm_seq.vision.module import CaptionModule
from lstm_seq.vision.vocab import Vocabulary

from .conftest import make_module


def test_decoders_use_the_shared_lstm_and_no_torch_lstm() -> None:
    for cls in (ShowTellDecoder, AttentionDecoder):
        dec = cls(20, 8, embed_dim=8, hidden_size=16)
        assert isinstance(dec.lstm, lstm_seq.LSTM)
        assert not any(isinstance(m, torch.nn.LSTM | torch.nn.LSTMCell) for m in dec.modules())


def test_show_tell_fast_path_equals_step_loop() -> None:
    torch.manual_seed(0)
    dec = ShowTellDecoder(20, 8, embed_dim=8, hidden_size=16, dropout=0.0).eval()
    grid, pooled, tokens = torch.randn(3, 4, 8), torch.randn(3, 8), torch.randint(0, 20, (3, 6))
    fast, _ = dec(grid, pooled, tokens)
    mem = dec.prepare(grid, pooled)
    state = dec.init_state(mem)
    steps = []
    for t in range(6):
        logits, state, _ = dec.step(tokens[:, t], state, mem)
        steps.append(logits)
    assert torch.allclose(fast, torch.stack(steps, 1), atol=1e-5)


def test_attention_forward_shapes_and_penalty() -> None:
    torch.manual_seed(0)
    dec = AttentionDecoder(20, 8, embed_dim=8, hidden_size=16, attention_dim=8)
    logits, alphas = dec(
        torch.randn(3, 9, 8), torch.randn(3, 8), torch.randint(0, 20, (3, 5)), sampling_prob=0.5
    )
    assert logits.shape == (3, 5, 20) and alphas is not None and alphas.shape == (3, 5, 9)
    assert torch.allclose(alphas.sum(-1), torch.ones(3, 5), atol=1e-5)
    mask = torch.ones(3, 5)
    uniform = torch.full((3, 5, 9), 1 / 9)
    assert doubly_stochastic_penalty(uniform, mask).item() == pytest.approx(9 * (1 - 5 / 9) ** 2, rel=1e-5)
    mask[:, 3:] = 0
    assert doubly_stochastic_penalty(uniform, mask).item() == pytest.approx(9 * (1 - 3 / 9) ** 2, rel=1e-5)


def test_scheduled_sampling_changes_inputs_only_when_asked() -> None:
    torch.manual_seed(0)
    dec = AttentionDecoder(20, 8, embed_dim=8, hidden_size=16, attention_dim=8, dropout=0.0).eval()
    args = (torch.randn(2, 4, 8), torch.randn(2, 8), torch.randint(4, 20, (2, 7)))
    ref, _ = dec(*args)
    same, _ = dec(*args, sampling_prob=0.0)
    assert torch.equal(ref, same)
    torch.manual_seed(1)
    mixed, _ = dec(*args, sampling_prob=1.0)
    assert torch.allclose(ref[:, 0], mixed[:, 0]) and not torch.allclose(ref[:, 1:], mixed[:, 1:])


@pytest.mark.parametrize("beam", [1, 3])
def test_caption_does_not_depend_on_batch_mates(module: CaptionModule, beam: int) -> None:
    torch.manual_seed(5)
    images = torch.randn(5, 3, 32, 32)
    together = module.generate(images, beam_size=beam, max_len=8)
    for i in range(5):
        alone = module.generate(images[i : i + 1], beam_size=beam, max_len=8)
        assert torch.equal(alone.tokens[0], together.tokens[i])
        assert alone.scores[0].item() == pytest.approx(together.scores[i].item(), abs=1e-4)
    mixed = module.generate(torch.cat([images[3:4], torch.randn(6, 3, 32, 32)]), beam_size=beam, max_len=8)
    assert torch.equal(mixed.tokens[0], together.tokens[3])


def test_beam_falls_back_when_end_is_never_emitted(module: CaptionModule) -> None:
    with torch.no_grad():
        module.decoder.out.bias[module.vocab.end_id] = -1e4
    out = module.generate(torch.randn(3, 3, 32, 32), beam_size=4, max_len=6)
    assert out.tokens.shape == (3, 6)
    assert (out.lengths == 6).all() and torch.isfinite(out.scores).all()
    assert all(len(c.split()) == 6 for c in module.vocab.decode_batch(out.tokens))
    g = module.generate(torch.randn(2, 3, 32, 32), beam_size=1, max_len=6)
    assert (g.lengths == 6).all()


def test_beam_and_length_penalty_on_a_known_distribution(vocab: Vocabulary) -> None:
    """Every step: p(red) ≈ 0.73, p(<end>) ≈ 0.27. Without a length penalty the best caption is the empty
    one; with alpha = 2 it is the longest finished one ("red" × 4 when max_len = 5)."""
    m = make_module("show_tell", vocab)
    with torch.no_grad():
        m.decoder.out.weight.zero_()
        m.decoder.out.bias.fill_(-30.0)
        m.decoder.out.bias[vocab.stoi["red"]] = 5.0
        m.decoder.out.bias[vocab.end_id] = 4.0
    images = torch.randn(2, 3, 32, 32)
    assert m.vocab.decode_batch(m.generate(images, beam_size=3, max_len=5).tokens) == ["", ""]
    assert (
        m.vocab.decode_batch(m.generate(images, beam_size=1, max_len=5).tokens) == ["red red red red red"] * 2
    )
    m.hparams.length_penalty = 2.0
    long = m.generate(images, beam_size=3, max_len=5)
    assert m.vocab.decode_batch(long.tokens) == ["red red red red"] * 2
    assert (long.lengths == 4).all()


def test_length_penalty_values() -> None:
    lp = length_penalty(torch.tensor([1, 7]), 1.0)
    assert torch.allclose(lp, torch.tensor([1.0, 2.0]))
    assert torch.equal(length_penalty(torch.tensor([3]), 0.0), torch.ones(1))


def test_beam_attention_maps_per_word(vocab: Vocabulary) -> None:
    m = make_module("attention", vocab)
    out = m.generate(torch.randn(2, 3, 32, 32), beam_size=2, max_len=5)
    assert out.alphas is not None and out.alphas.shape == (2, 5, 4)
    k = int(out.lengths[0])
    assert torch.allclose(out.alphas[0, : k + 1].sum(-1), torch.ones(k + 1), atol=1e-5) if k < 5 else True
    grid, pooled = m.features(torch.randn(2, 3, 32, 32))
    g = greedy(m.decoder, grid, pooled, vocab.start_id, vocab.end_id, vocab.pad_id, 5)
    b1 = beam_search(
        m.decoder, grid, pooled, vocab.start_id, vocab.end_id, vocab.pad_id, beam_size=1, max_len=5
    )
    assert g.tokens.shape == b1.tokens.shape


def test_word_dropout_changes_training_inputs_only(vocab: Vocabulary) -> None:
    batch = {
        "images": torch.randn(2, 3, 32, 32),
        "img_index": torch.tensor([0, 1]),
        "tokens": torch.tensor([[1, 4, 5, 6, 2], [1, 7, 8, 2, 0]]),
    }
    losses = {}
    for p in (0.0, 0.9):
        m = make_module("attention", vocab, word_dropout=p)  # same seed: same weights
        losses[("eval", p)] = m._loss(batch)[0]
        m.train()
        torch.manual_seed(0)
        losses[("train", p)] = m._loss(batch)[0]
    assert torch.equal(losses[("eval", 0.0)], losses[("eval", 0.9)])
    assert not torch.isclose(losses[("train", 0.0)], losses[("train", 0.9)])


def test_repeated_ngram_mask_on_hand_made_sequences() -> None:
    seqs = torch.tensor([[4, 5, 6, 7, 4, 5, 0], [4, 5, 6, 7, 8, 9, 0]])  # "a big blue square a big"
    m3 = repeated_ngram_mask(seqs, 6, 3, 12)
    assert m3[0].nonzero().flatten().tolist() == [6]  # "a big blue" again: blue is penalised
    assert not m3[1].any()
    m2 = repeated_ngram_mask(seqs, 6, 2, 12)
    assert m2[0].nonzero().flatten().tolist() == [6]  # "big blue" again
    assert repeated_ngram_mask(seqs, 2, 1, 12)[0].nonzero().flatten().tolist() == [4, 5]
    assert not repeated_ngram_mask(seqs, 2, 3, 12).any()  # shorter than n: nothing to repeat


def test_no_repeat_penalty_in_greedy_and_beam_with_a_switch(vocab: Vocabulary) -> None:
    """Every step prefers red > blue > circle >> <end>: greedy repeats "red" to max_len (beam search finds
    only the empty caption finished); with unigrams forbidden each word comes once, then <end>."""
    m = make_module("show_tell", vocab)
    with torch.no_grad():
        m.decoder.out.weight.zero_()
        m.decoder.out.bias.fill_(-30.0)
        for w, v in (("red", 5.0), ("blue", 4.5), ("circle", 4.2)):
            m.decoder.out.bias[vocab.stoi[w]] = v
        m.decoder.out.bias[vocab.end_id] = -1.0
    images = torch.randn(2, 3, 32, 32)
    m.hparams.length_penalty = 2.0
    assert (
        m.vocab.decode_batch(m.generate(images, beam_size=1, max_len=5).tokens) == ["red red red red red"] * 2
    )
    m.hparams.no_repeat_ngram, m.hparams.repeat_penalty = 1, float("inf")
    assert m.vocab.decode_batch(m.generate(images, beam_size=1, max_len=5).tokens) == ["red blue circle"] * 2
    for cap in m.vocab.decode_batch(m.generate(images, beam_size=3, max_len=5).tokens):
        assert sorted(cap.split()) == ["blue", "circle", "red"]  # any order scores the same
    m.hparams.repeat_words = ["blue"]  # only repeats that end in "blue" are penalised
    assert (
        m.vocab.decode_batch(m.generate(images, beam_size=1, max_len=5).tokens) == ["red red red red red"] * 2
    )
    m.hparams.repeat_words = None
    m.hparams.repeat_penalty = 0.0  # the switch: off again
    assert (
        m.vocab.decode_batch(m.generate(images, beam_size=1, max_len=5).tokens) == ["red red red red red"] * 2
    )


def test_coverage_penalty_runs_in_beam_search(vocab: Vocabulary) -> None:
    assert torch.allclose(
        coverage_score(torch.tensor([[1.0, 2.0, 0.5, 0.0]])),
        torch.tensor([(0 + 0 + (-0.6931) + (-4.6052)) / 4]),
        atol=1e-3,
    )
    m = make_module("attention", vocab)
    grid, pooled = m.features(torch.randn(3, 3, 32, 32))
    args = (m.decoder, grid, pooled, vocab.start_id, vocab.end_id, vocab.pad_id, 3, 6)
    plain, covered = beam_search(*args), beam_search(*args, coverage_penalty=1.0)
    assert plain.tokens.shape == covered.tokens.shape
    assert (covered.scores <= plain.scores + 1e-6).all()  # the term is ≤ 0
