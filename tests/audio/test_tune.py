"""Tuning the beam search's LM weight and word score on validation, and keeping the result in the checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lstm_seq.audio.data.datasets import Batch
from lstm_seq.audio.decoding.decode import BeamConfig, BeamSearchDecoder
from lstm_seq.audio.decoding.tune import Emissions, collect_emissions, tune_beam
from lstm_seq.audio.module import ASRModule, load_checkpoint, store_decode_settings
from lstm_seq.audio.recipe import attach_decoding, beam_config
from lstm_seq.audio.vocab import CharVocab

LM_TEXTS = ["the red door"] * 20 + ["the rad cup"] * 2  # "red" is ten times likelier than "rad" after "the"


def _utterance(vocab: CharVocab, vowel: dict[str, float]) -> torch.Tensor:
    """(1, 13, V) log-posteriors of "the r?d door", the vowel of the middle word distributed as ``vowel``."""
    frames = [{"t": .9}, {"h": .9}, {"e": .9}, {" ": .9}, {"r": .9}, vowel, {"d": .9}, {" ": .9},
              {"d": .9}, {"o": .9}, {}, {"o": .9}, {"r": .9}]  # fmt: skip
    out = torch.full((1, len(frames), len(vocab)), 1e-4)
    for t, probs in enumerate(frames):
        for sym, p in probs.items():
            out[0, t, vocab.tokens.index(sym)] = p
        out[0, t, vocab.blank] = max(1e-4, 1.0 - sum(probs.values()))
    return (out / out.sum(-1, keepdim=True)).log()


def test_tuning_picks_the_weight_that_fits_both_utterances(tmp_path: Path) -> None:
    """Utterance 1 is acoustically unsure ("red", a=.5 e=.4) and needs the LM; utterance 2 clearly says the
    rare word ("rad", a=.95) and a heavy LM would overrule it. Only the middle weight gets both right."""
    v = CharVocab()
    unsure, clear = _utterance(v, {"a": 0.5, "e": 0.4}), _utterance(v, {"a": 0.95, "e": 0.01})
    n = torch.tensor([unsure.shape[1]])
    emissions = Emissions([(unsure, n), (clear, n)], ["the red door", "the rad door"])
    decoder = BeamSearchDecoder(v, BeamConfig(beam_size=20), LM_TEXTS, tmp_path)
    result = tune_beam(decoder, emissions, v, lm_weights=[0.0, 0.5, 3.0], word_scores=[0.0])
    assert (result.lm_weight, result.word_score, result.wer) == (0.5, 0.0, 0.0)
    by_weight = {row["lm_weight"]: row["wer"] for row in result.table}
    assert by_weight[0.0] == pytest.approx(1 / 6) and by_weight[3.0] == pytest.approx(1 / 6)
    assert result.greedy_wer == pytest.approx(1 / 6)  # greedy follows the acoustics: "rad" twice
    with pytest.raises(ValueError, match="at least one lm_weight"):
        tune_beam(decoder, emissions, v, lm_weights=[], word_scores=[0.0])
    with pytest.raises(ValueError, match="validation utterances"):
        tune_beam(decoder, Emissions(), v, lm_weights=[1.0], word_scores=[0.0])


def test_null_weights_take_the_tuned_values_else_the_untuned_defaults() -> None:
    decode = {"beam": True, "beam_size": 8, "lm_weight": None, "word_score": None, "tune_lm_weights": [1.0]}
    assert beam_config(decode) == BeamConfig(beam_size=8, lm_weight=1.0, word_score=0.0)
    tuned = beam_config(decode, {"lm_weight": 2.5, "word_score": -1.0})
    assert tuned is not None and (tuned.lm_weight, tuned.word_score) == (2.5, -1.0)
    fixed = beam_config({**decode, "lm_weight": 0.3}, {"lm_weight": 2.5, "word_score": -1.0})
    assert fixed is not None and (fixed.lm_weight, fixed.word_score) == (0.3, -1.0)  # a number always wins
    assert beam_config({"beam": False}) is None


def test_attach_reuses_the_tuned_decoder_and_rebuilds_for_other_settings(tmp_path: Path) -> None:
    """After tuning the module already holds the decoder with the chosen weights: testing re-uses it
    (one LM estimate per run); any other setting builds a new one."""
    m = ASRModule(model={"hidden_size": 8, "num_layers": 1, "conv_channels": 2})
    m.lm_texts = LM_TEXTS
    decode = {"beam": True, "beam_size": 20, "lm_weight": None, "word_score": None}
    m.decode_settings = {"lm_weight": 0.5, "word_score": 0.0}
    tuned = BeamSearchDecoder(m.vocab, BeamConfig(beam_size=20), LM_TEXTS, tmp_path).with_weights(0.5, 0.0)
    m.beam_decoder = tuned
    assert attach_decoding(m, decode, tmp_path / "test") == tuned.cfg and m.beam_decoder is tuned
    assert not (tmp_path / "test").exists()  # nothing re-estimated
    cfg = attach_decoding(m, {**decode, "lm_weight": 2.0}, tmp_path / "other")
    assert cfg is not None and cfg.lm_weight == 2.0 and m.beam_decoder is not tuned
    assert (tmp_path / "other" / "lm.arpa").is_file()


def test_tuned_settings_survive_in_the_checkpoint(tmp_path: Path) -> None:
    m = ASRModule(model={"hidden_size": 8, "num_layers": 1, "conv_channels": 2})
    path = tmp_path / "asr.ckpt"
    torch.save(
        {"state_dict": m.state_dict(), "hyper_parameters": dict(m.hparams), "asr_lm_texts": ["a b"]}, path
    )
    assert load_checkpoint(path).decode_settings == {}  # older checkpoints have none
    store_decode_settings(path, {"lm_weight": 1.5, "word_score": 1.0})
    back = load_checkpoint(path)
    assert back.decode_settings == {"lm_weight": 1.5, "word_score": 1.0} and back.lm_texts == ["a b"]
    torch.testing.assert_close(back.state_dict(), m.state_dict())


def test_collect_emissions_runs_the_model_once_per_batch_in_order() -> None:
    m = ASRModule(model={"hidden_size": 8, "num_layers": 1, "conv_channels": 2}).train()
    g = torch.Generator().manual_seed(0)

    def batch(texts: list[str], samples: list[int]) -> Batch:
        wave = torch.randn(len(texts), max(samples), generator=g)
        z = torch.zeros(len(texts), 1, dtype=torch.long)
        return Batch(wave, torch.tensor(samples), z, z[:, 0], texts, [f"{t}.wav" for t in texts])

    batches = [batch(["a", "b"], [8000, 6000]), None, batch(["c"], [4000])]
    em = collect_emissions(m, batches)
    assert m.training  # restored
    assert em.refs == ["a", "b", "c"] and len(em.batches) == 2
    (lp, n), (lp2, _) = em.batches
    assert lp.shape[0] == 2 and lp2.shape[0] == 1 and lp.shape[-1] == len(m.vocab)
    assert n.tolist()[0] > n.tolist()[1] > 0
    with torch.no_grad():
        expected, _ = m.eval()(batches[2].wave, batches[2].wave_lengths)
    torch.testing.assert_close(lp2, expected)
    assert len(em.greedy(m.vocab)) == 3
