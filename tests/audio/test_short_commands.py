"""Short commands and isolated words: in the corpus, in the LM estimated from it, and through the beam search."""

from __future__ import annotations

import random
from pathlib import Path

import torch

from lstm_seq.audio.data import synth
from lstm_seq.audio.data.grammar import sample_short, vocabulary
from lstm_seq.audio.data.synth import SynthConfig
from lstm_seq.audio.decoding.decode import BeamConfig
from lstm_seq.audio.decoding.ngram import NGramLM
from lstm_seq.audio.decoding.setup import DecodingSetup
from lstm_seq.audio.vocab import CharVocab

V = CharVocab()
WORDS = ["third", "stop", "five minutes", "one", "ten", "hundred", "turn left"]


def train_texts(short_fraction: float) -> list[str]:
    """The training transcripts of the default corpus (its plan: no audio is rendered)."""
    return [t for s, _, t, _ in synth._plan(SynthConfig(short_fraction=short_fraction)) if s == "train"]


def noisy_emissions(text: str, seed: int = 0) -> torch.Tensor:
    """(1, T, V) log-posteriors that spell ``text`` under Gaussian noise (seeded)."""
    ids = [i for ch in text for i in [V.encode(ch)[0]] * 2 + [V.blank]]
    lp = torch.full((len(ids), len(V)), -4.0)
    lp[torch.arange(len(ids)), torch.tensor(ids)] = 0.0
    g = torch.Generator().manual_seed(seed)
    return (lp + 1.5 * torch.randn(lp.shape, generator=g)).log_softmax(-1)[None]


def sentence_log10(lm: NGramLM, words: list[str]) -> float:
    """log10 p(<s> words </s>) under the trigram ``lm``."""
    seq, total = ["<s>", *words, "</s>"], 0.0
    for k in range(1, len(seq)):
        hist = seq[max(0, k - 2) : k]
        ids = torch.tensor([[-1] * (2 - len(hist)) + [lm.word_id(w) for w in hist]])
        ctx = [(a[..., None], b[..., None]) for a, b in lm.context_ids(ids)]
        total += float(lm.score(ctx, torch.tensor([[lm.word_id(seq[k])]]))[0, 0])
    return total


def test_short_utterances_are_one_to_three_grammar_words() -> None:
    rng = random.Random(0)
    shorts = [sample_short(rng) for _ in range(300)]
    assert all(1 <= len(s.split()) <= 3 for s in shorts)
    assert {w for s in shorts for w in s.split()} <= vocabulary()
    texts = train_texts(0.15)
    n_short = sum(len(t.split()) <= 3 for t in texts)
    assert 0.1 < n_short / len(texts) < 0.2
    assert {"third", "stop"} <= set(texts)  # isolated words really occur in training


def test_isolated_word_and_short_command_round_trip_through_lm_and_beam(tmp_path: Path) -> None:
    """The LM estimated from the corpus gives isolated words and short commands a real sentence probability, and
    the beam search + that LM returns them as they are, even with the LM weighted heavily; an LM of sentences
    only (the corpus before short utterances) rates them far lower and turns one of them into a sentence word."""
    with_short, sentences_only = (
        DecodingSetup.from_texts(train_texts(0.15)),
        DecodingSetup.from_texts(train_texts(0)),
    )
    lms = {}
    for name, setup in (("short", with_short), ("sentences", sentences_only)):
        table = setup.language_model(3)
        assert table is not None
        lms[name] = NGramLM(table)
    for w in ("third", "one", "stop", "five minutes"):
        gain = sentence_log10(lms["short"], w.split()) - sentence_log10(lms["sentences"], w.split())
        assert gain > 1.0, w  # at least ten times as likely as an utterance of its own
    results = {}
    for name, setup in (("short", with_short), ("sentences", sentences_only)):
        for lm_weight in (1.0, 2.0):
            dec = setup.decoder(
                V, BeamConfig(beam_size=16, lm_weight=lm_weight), tmp_path / f"{name}{lm_weight}"
            )
            results[name, lm_weight] = [
                dec(x, torch.tensor([x.shape[1]]))[0] for x in map(noisy_emissions, WORDS)
            ]
    assert results["short", 1.0] == WORDS
    assert results["short", 2.0] == WORDS
    assert results["sentences", 2.0] != WORDS  # the case is reached: without short utterances the LM wins
