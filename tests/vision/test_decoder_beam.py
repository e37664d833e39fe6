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
    m.settings["length_penalty"] = 2.0
    long = m.generate(images, beam_size=3, max_len=5)
    assert m.vocab.decode_batch(long.tokens) == ["red red red red"] * 2
    assert (long.lengths == 4).all()


def test_length_penalty_values() -> None:
    lp = length_penalty(torch.tensor([1, 7]), 1.0)
    assert torch.allclose(lp, torch.tensor([1.0, 2.0]))
    assert torch.equal(length_penalty(torch.tensor([3]), 0.0), torch.ones(1))


def test_beam_attention_maps_per_word(vocab: Vocabulary) -> None:
    """One attention map per emitted token (the words and ``<end>``), each a distribution over the grid;
    rows past ``<end>`` stay zero. One image is forced never to end, so both cases (finished, cut at
    max_len) are checked."""
    m = make_module("attention", vocab)
    grid, pooled = m.features(torch.randn(3, 3, 32, 32))
    args = (m.decoder, grid, pooled, vocab.start_id, vocab.end_id, vocab.pad_id)
    with torch.no_grad():
        m.decoder.out.bias[vocab.end_id] = 6.0  # every caption ends early ...
    ended = beam_search(*args, beam_size=2, max_len=5)
    with torch.no_grad():
        m.decoder.out.bias[vocab.end_id] = -1e4  # ... or never
    cut = beam_search(*args, beam_size=2, max_len=5)
    assert (ended.lengths < 5).all() and (cut.lengths == 5).all()
    for out in (ended, cut):
        assert out.alphas is not None and out.alphas.shape == (3, 5, 4)
        for i in range(3):
            n = min(int(out.lengths[i]) + 1, 5)  # the words, and <end> when it came
            assert torch.allclose(out.alphas[i, :n].sum(-1), torch.ones(n), atol=1e-5)
            assert (out.alphas[i, n:] == 0).all()


def _beam1_reference(
    m: CaptionModule, grid: torch.Tensor, pooled: torch.Tensor, max_len: int
) -> list[list[int]]:
    """Beam search with K = 1 written out for one image at a time: the alive hypothesis follows the best word
    that is not ``<end>``; at each step where ``<end>`` is among the 2K = 2 best words the finished caption
    (words so far + ``<end>``) is a candidate; the best candidate wins (no length penalty), and without any
    the alive words, cut at max_len."""
    v, dec = m.vocab, m.decoder
    best: list[list[int]] = []
    for i in range(grid.shape[0]):
        mem = dec.prepare(grid[i : i + 1], pooled[i : i + 1])
        state, tok = dec.init_state(mem), torch.tensor([v.start_id])
        words: list[int] = []
        score, cand = 0.0, (float("-inf"), [v.end_id])
        for _ in range(max_len):
            logits, state, _ = dec.step(tok, state, mem)
            logp = torch.log_softmax(logits.float(), -1)[0]
            logp[[v.start_id, v.pad_id]] = float("-inf")
            top2 = logp.topk(2).indices.tolist()
            if v.end_id in top2 and score + float(logp[v.end_id]) > cand[0]:
                cand = (score + float(logp[v.end_id]), [*words, v.end_id])
            w = next(t for t in top2 if t != v.end_id)
            words.append(w)
            score += float(logp[w])
            tok = torch.tensor([w])
        best.append(cand[1] if cand[0] > float("-inf") else words)  # nothing finished: cut at max_len
    return best


@pytest.mark.parametrize(
    ("variant", "scale", "end_bias"), [("show_tell", 10.0, 1.0), ("attention", 6.0, 1.5)]
)
@torch.no_grad()
def test_greedy_and_beam_1_against_a_step_by_step_search(
    vocab: Vocabulary, variant: str, scale: float, end_bias: float
) -> None:
    """Greedy = the argmax word every step, its score the summed log-probability of its words; beam 1 = the
    written-out K = 1 search, and never worse than greedy (greedy's caption is one of its candidates). The
    output layer is scaled so that the untrained model's words are peaked and ``<end>`` competes: captions
    of several lengths, some cut at max_len, and greedy and beam 1 disagree on some images."""
    m = make_module(variant, vocab)
    m.decoder.out.weight.mul_(scale)
    m.decoder.out.bias[vocab.end_id] += end_bias
    torch.manual_seed(0)
    grid, pooled = m.features(torch.randn(6, 3, 32, 32))
    args = (m.decoder, grid, pooled, vocab.start_id, vocab.end_id, vocab.pad_id)
    g = greedy(*args, 8)
    b1 = beam_search(*args, beam_size=1, max_len=8)
    ref = _beam1_reference(m, grid, pooled, 8)
    assert len(set(b1.lengths.tolist())) > 1 and not torch.equal(
        g.lengths, b1.lengths
    )  # the cases are reached
    for i in range(6):
        n = int(b1.lengths[i])
        assert b1.tokens[i, : n + 1].tolist() == ref[i]
        assert (b1.tokens[i, n + 1 :] == vocab.pad_id).all()
        # greedy, recomputed by teacher-forcing its own words
        k = int(g.lengths[i])
        seq = g.tokens[i, : min(k + 1, 8)]
        mem = m.decoder.prepare(grid[i : i + 1], pooled[i : i + 1])
        state, tok, total = m.decoder.init_state(mem), torch.tensor([vocab.start_id]), 0.0
        for w in seq.tolist():
            logits, state, _ = m.decoder.step(tok, state, mem)
            logp = torch.log_softmax(logits.float(), -1)[0]
            logp[[vocab.start_id, vocab.pad_id]] = float("-inf")
            assert w == int(logp.argmax())
            total += float(logp[w])
            tok = torch.tensor([w])
        assert float(g.scores[i]) == pytest.approx(total, abs=1e-4)
        if k < 8:  # greedy finished: beam 1 scores at least as well
            assert float(b1.scores[i]) >= float(g.scores[i]) - 1e-5


def test_word_dropout_changes_training_inputs_only(vocab: Vocabulary) -> None:
    batch = {
        "images": torch.randn(2, 3, 32, 32),
        "img_index": torch.tensor([0, 1]),
        "tokens": torch.tensor([[1, 4, 5, 6, 2], [1, 7, 8, 2, 0]]),
    }
    losses = {}
    for p in (0.0, 0.9):
        m = make_module("attention", vocab, word_dropout=p)  # same seed: same weights
        losses[("eval", p)] = m.caption_loss(batch)[0]
        m.train()
        torch.manual_seed(0)
        losses[("train", p)] = m.caption_loss(batch)[0]
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
    m.settings["length_penalty"] = 2.0
    assert (
        m.vocab.decode_batch(m.generate(images, beam_size=1, max_len=5).tokens) == ["red red red red red"] * 2
    )
    m.settings["no_repeat_ngram"], m.settings["repeat_penalty"] = 1, float("inf")
    assert m.vocab.decode_batch(m.generate(images, beam_size=1, max_len=5).tokens) == ["red blue circle"] * 2
    for cap in m.vocab.decode_batch(m.generate(images, beam_size=3, max_len=5).tokens):
        assert sorted(cap.split()) == ["blue", "circle", "red"]  # any order scores the same
    m.settings["repeat_words"] = ["blue"]  # only repeats that end in "blue" are penalised
    assert (
        m.vocab.decode_batch(m.generate(images, beam_size=1, max_len=5).tokens) == ["red red red red red"] * 2
    )
    m.settings["repeat_words"] = None
    m.settings["repeat_penalty"] = 0.0  # the switch: off again
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


@pytest.mark.parametrize("variant", ["show_tell", "attention"])
@pytest.mark.parametrize("beam", [1, 3])
def test_start_and_pad_are_never_emitted(vocab: Vocabulary, variant: str, beam: int) -> None:
    """The model prefers ``<start>`` and ``<pad>`` above every word by far; neither ever appears among the
    emitted words (pad only fills the row after ``<end>``), with and without ``<end>`` in reach."""
    m = make_module(variant, vocab)
    with torch.no_grad():
        m.decoder.out.bias[vocab.start_id] = 50.0
        m.decoder.out.bias[vocab.pad_id] = 49.0
    images = torch.randn(4, 3, 32, 32)
    for end_bias in (0.0, -1e4):  # <end> possible / never chosen (captions cut at max_len)
        with torch.no_grad():
            m.decoder.out.bias[vocab.end_id] = end_bias
        out = m.generate(images, beam_size=beam, max_len=6)
        for i in range(4):
            n = int(out.lengths[i])
            words = out.tokens[i, :n].tolist()
            assert len(words) == n and not {vocab.start_id, vocab.pad_id, vocab.end_id} & set(words)
            if n < 6:
                assert int(out.tokens[i, n]) == vocab.end_id
                assert (out.tokens[i, n + 1 :] == vocab.pad_id).all()
        if end_bias < 0:
            assert (out.lengths == 6).all()
