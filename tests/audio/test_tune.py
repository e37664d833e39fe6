"""Tuning the beam search's LM weight and word score on validation, once after training, and the final checkpoint
that keeps the result."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from lstm_seq.audio.data.datasets import Batch
from lstm_seq.audio.decoding.decode import BeamConfig
from lstm_seq.audio.decoding.emissions import Emissions
from lstm_seq.audio.decoding.evaluate import collect_emissions
from lstm_seq.audio.decoding.lm import estimate, estimate_arpa
from lstm_seq.audio.decoding.setup import CKPT_KEY, DecodingSetup, build
from lstm_seq.audio.decoding.tune import best_pair, tune_beam
from lstm_seq.audio.module import ASRModule
from lstm_seq.audio.recipe import datamodule, finish_training, tune_decoding
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
    decoder = DecodingSetup.from_texts(LM_TEXTS).decoder(v, BeamConfig(beam_size=20), tmp_path)
    result = tune_beam(decoder, emissions, lm_weights=[0.0, 0.5, 3.0], word_scores=[0.0])
    assert (result.lm_weight, result.word_score, result.wer) == (0.5, 0.0, 0.0)
    by_weight = {row["lm_weight"]: row["wer"] for row in result.table}
    assert by_weight[0.0] == pytest.approx(1 / 6) and by_weight[3.0] == pytest.approx(1 / 6)
    greedy = emissions.greedy(v)  # greedy follows the acoustics: "rad" twice
    assert greedy == ["the rad door", "the rad door"]
    with pytest.raises(ValueError, match="at least one lm_weight"):
        tune_beam(decoder, emissions, lm_weights=[], word_scores=[0.0])
    with pytest.raises(ValueError, match="validation utterances"):
        tune_beam(decoder, Emissions(), lm_weights=[1.0], word_scores=[0.0])


def test_the_grid_decoded_by_worker_processes_gives_the_table_of_one_process(tmp_path: Path) -> None:
    """Tuning decodes the pairs in forked worker processes: the same rows, in grid order, as one process."""
    v = CharVocab()
    unsure, clear = _utterance(v, {"a": 0.5, "e": 0.4}), _utterance(v, {"a": 0.95, "e": 0.01})
    n = torch.tensor([unsure.shape[1]])
    emissions = Emissions([(unsure, n), (clear, n)], ["the red door", "the rad door"])
    decoder = DecodingSetup.from_texts(LM_TEXTS).decoder(v, BeamConfig(beam_size=20), tmp_path)
    grid = {"lm_weights": [0.0, 0.5, 1.0, 3.0], "word_scores": [-1.0, 0.0, 2.0]}
    one = tune_beam(decoder, emissions, **grid, workers=1)
    pool = tune_beam(decoder, emissions, **grid, workers=3)
    assert pool.table == one.table and len(one.table) == 12
    assert [(r["lm_weight"], r["word_score"]) for r in pool.table][:3] == [
        (0.0, -1.0),
        (0.0, 0.0),
        (0.0, 2.0),
    ]
    assert (pool.lm_weight, pool.word_score, pool.wer) == (one.lm_weight, one.word_score, one.wer)


def test_ties_go_to_lower_cer_then_to_the_pair_nearest_the_untuned_weights(tmp_path: Path) -> None:
    """Every pair decodes the clear utterance right (equal WER and CER): the pair nearest 1.0 / 0.0 wins,
    whatever the grid order; a pair with equal WER but lower CER beats it."""
    v = CharVocab()
    clear = _utterance(v, {"e": 0.95, "a": 0.01})
    n = torch.tensor([clear.shape[1]])
    emissions = Emissions([(clear, n)], ["the red door"])
    decoder = DecodingSetup.from_texts(LM_TEXTS).decoder(v, BeamConfig(beam_size=20), tmp_path)
    for weights in ([3.0, 0.5, 1.5], [1.5, 3.0, 0.5]):
        result = tune_beam(decoder, emissions, lm_weights=weights, word_scores=[2.0, 0.5])
        assert {r["wer"] for r in result.table} == {0.0} and len({r["cer"] for r in result.table}) == 1
        assert (result.lm_weight, result.word_score) == (0.5, 0.5)  # |0.5-1| + 0.5 = 1.0, the smallest
    rows = [
        {"lm_weight": 1.0, "word_score": 0.0, "wer": 0.1, "cer": 0.05},
        {"lm_weight": 2.0, "word_score": 1.0, "wer": 0.1, "cer": 0.04},  # same WER, lower CER: wins
        {"lm_weight": 0.0, "word_score": 0.0, "wer": 0.2, "cer": 0.01},
    ]
    assert best_pair(rows)["lm_weight"] == 2.0 and best_pair(rows[::-1])["lm_weight"] == 2.0


def _tiny_module() -> ASRModule:
    return ASRModule(model={"hidden_size": 8, "num_layers": 1, "conv_channels": 2})


DECODE = {"beam": True, "beam_size": 4, "lm_weight": None, "word_score": None,
          "tune_lm_weights": [0.0, 2.0], "tune_word_scores": [0.0, 1.0]}  # fmt: skip
DATA = {"max_duration": None, "max_frames": 6000, "num_workers": 0}


def test_tuning_is_one_step_that_hands_the_test_its_decoder(
    tiny_corpus: dict[str, Path], tmp_path: Path
) -> None:
    """tune_decoding runs once after training: it picks the pair on validation, puts it into the module's
    setup and returns the decoder with that pair, which the test then uses as it is; the torch backend writes
    no LM or lexicon file. With both weights fixed nothing is tuned and the configured decoder comes back."""
    m = _tiny_module()
    m.decoding = DecodingSetup.from_texts(LM_TEXTS)
    dm = datamodule(m, tiny_corpus, DATA, seed=0)
    decoder, metrics = tune_decoding(m, dm, DECODE, tmp_path)
    tuning = json.loads((tmp_path / "beam_tuning.json").read_text())
    assert decoder is not None and len(tuning["table"]) == 4
    chosen = (decoder.cfg.lm_weight, decoder.cfg.word_score)
    assert chosen == (m.decoding.lm_weight, m.decoding.word_score) == tuple(tuning["chosen"].values())
    assert metrics["decode/lm_weight"] == chosen[0] and metrics["val/wer_beam_tuned"] >= 0
    assert not (tmp_path / "lm").exists()  # the LM went straight into tensors
    fixed, none = tune_decoding(m, dm, {**DECODE, "lm_weight": 0.5, "word_score": 1.0}, tmp_path / "fixed")
    assert none == {} and fixed is not None and (fixed.cfg.lm_weight, fixed.cfg.word_score) == (0.5, 1.0)
    assert tune_decoding(m, dm, {"beam": False}, tmp_path / "greedy") == (None, {})


def test_the_final_checkpoint_is_the_best_one_with_the_tuned_decoding(
    tiny_corpus: dict[str, Path], tmp_path: Path
) -> None:
    """finish_training writes ONE new file, the final checkpoint: the best checkpoint's content (weights, and
    whatever else training wrote into it) with the decoding tuned after training. The best checkpoint is left
    as training wrote it; pipelines.asr.test on the final one decodes with the tuned pair."""
    m = _tiny_module()
    m.decoding = DecodingSetup.from_texts(LM_TEXTS)
    best = tmp_path / "checkpoints" / "best-epoch03.ckpt"
    best.parent.mkdir()
    ckpt = {"state_dict": m.state_dict(), "hyper_parameters": dict(m.hparams), "epoch": 3}
    m.on_save_checkpoint(ckpt)
    torch.save(ckpt, best)
    before = best.read_bytes()
    final = tmp_path / "checkpoints" / "final.ckpt"
    dm = datamodule(m, tiny_corpus, DATA, seed=0)
    results = finish_training(m, dm, DECODE, tmp_path, {"train/epochs": 4}, best, final)
    assert best.read_bytes() == before
    raw = torch.load(final, weights_only=True)
    assert raw["epoch"] == 3 and raw[CKPT_KEY]["sentences"] == [("the rad cup", 2), ("the red door", 20)]
    tuned = (raw[CKPT_KEY]["lm_weight"], raw[CKPT_KEY]["word_score"])
    assert tuned == (results["decode/lm_weight"], results["decode/word_score"])
    back = ASRModule.load(final)
    torch.testing.assert_close(back.state_dict(), m.state_dict())
    assert (back.decoding.lm_weight, back.decoding.word_score) == tuned
    assert ASRModule.load(best).decoding.lm_weight is None  # tuned after training: only the final one has it


def test_null_weights_take_the_tuned_values_else_the_untuned_defaults() -> None:
    decode = {"beam": True, "beam_size": 8, "lm_weight": None, "word_score": None, "tune_lm_weights": [1.0]}
    untuned = DecodingSetup.from_texts(LM_TEXTS)
    assert untuned.beam_config(decode) == BeamConfig(beam_size=8, lm_weight=1.0, word_score=0.0)
    tuned = replace(untuned, lm_weight=2.5, word_score=-1.0)
    cfg = tuned.beam_config(decode)
    assert cfg is not None and (cfg.lm_weight, cfg.word_score) == (2.5, -1.0)
    fixed = tuned.beam_config({**decode, "lm_weight": 0.3})
    assert fixed is not None and (fixed.lm_weight, fixed.word_score) == (0.3, -1.0)  # a number always wins
    assert tuned.beam_config({"beam": False}) is None


def test_the_setup_stores_a_sentence_count_table_that_gives_the_same_lm(tmp_path: Path) -> None:
    """The checkpoint keeps distinct sentences with counts, not every transcript; the LM estimated from it
    is the LM of the raw transcripts (the same ARPA text)."""
    setup = DecodingSetup.from_texts([*LM_TEXTS, "  the   red door "])
    stored = setup.to_dict()
    assert stored["sentences"] == [("the rad cup", 2), ("the red door", 21)]
    back = DecodingSetup.from_dict(stored)
    assert back == setup and back.words == ("cup", "door", "rad", "red", "the")
    assert back.language_model(3) == estimate([*LM_TEXTS, "the red door"], order=3)
    assert back.language_model(0) is None


def test_old_checkpoints_load_with_their_tuned_weights(tmp_path: Path) -> None:
    """Checkpoints of earlier versions: raw transcripts and a separate tuned-weights entry (before
    DecodingSetup), and the ``asr_decoding`` entry with tuned weights (best/last rewritten after tuning)."""
    m = _tiny_module()
    path = tmp_path / "asr.ckpt"
    legacy = {"state_dict": m.state_dict(), "hyper_parameters": dict(m.hparams), "asr_lm_texts": ["a b"] * 3}
    torch.save({**legacy, "asr_decode": {"lm_weight": 0.5, "word_score": 2.0}}, path)
    old = ASRModule.load(path).decoding  # written before DecodingSetup: raw transcripts + tuned weights
    assert old.sentences == {"a b": 3} and (old.lm_weight, old.word_score) == (0.5, 2.0)
    torch.save(legacy, path)
    assert ASRModule.load(path).decoding.lm_weight is None  # nothing tuned yet
    entry = replace(DecodingSetup.from_texts(["a b"] * 3), lm_weight=1.5, word_score=1.0).to_dict()
    torch.save({"state_dict": m.state_dict(), "hyper_parameters": dict(m.hparams), CKPT_KEY: entry}, path)
    back = ASRModule.load(path)
    assert (back.decoding.lm_weight, back.decoding.word_score) == (1.5, 1.0) and back.decoding.words == (
        "a",
        "b",
    )
    torch.testing.assert_close(back.state_dict(), m.state_dict())


def test_a_users_arpa_lm_gives_the_lexicon_and_the_scores(tmp_path: Path) -> None:
    """``decode.lm_path``: the lexicon is the ARPA's spellable unigrams, and decoding uses that LM: an LM that
    prefers "rad" turns the unsure utterance into "the rad door" where the transcripts' LM says "red"."""
    v = CharVocab()
    arpa = tmp_path / "user.arpa"
    arpa.write_text(estimate_arpa(["the rad door"] * 20 + ["the red cup", "naïve café"], order=3))
    setup = build({"lm_path": str(arpa)}, ["ignored transcripts"], v)
    assert "rad" in setup.words and "naïve" not in setup.words and "<s>" not in setup.words
    unsure = _utterance(v, {"a": 0.4, "e": 0.5})
    n = torch.tensor([unsure.shape[1]])
    cfg = BeamConfig(beam_size=20, lm_weight=2.0)
    assert setup.decoder(v, cfg, tmp_path / "u")(unsure, n) == ["the rad door"]
    assert DecodingSetup.from_texts(LM_TEXTS).decoder(v, cfg, tmp_path / "t")(unsure, n) == ["the red door"]
    assert DecodingSetup.from_dict(setup.to_dict()) == setup  # travels in the checkpoint
    with pytest.raises(FileNotFoundError, match=r"decode\.lm_path"):
        build({"lm_path": str(tmp_path / "missing.arpa")}, [], v)
    (tmp_path / "bad.arpa").write_text("\\data\\\n\\1-grams:\nnot-a-number the\n")
    with pytest.raises(ValueError, match=r"bad\.arpa:3"):
        build({"lm_path": str(tmp_path / "bad.arpa")}, [], v)


def test_collect_emissions_runs_the_model_once_per_batch_in_order() -> None:
    m = ASRModule(model={"hidden_size": 8, "num_layers": 1, "conv_channels": 2}).train()
    g = torch.Generator().manual_seed(0)

    def batch(texts: list[str], samples: list[int]) -> Batch:
        wave = torch.randn(len(texts), max(samples), generator=g)
        z = torch.zeros(len(texts), 1, dtype=torch.long)
        return Batch(wave, torch.tensor(samples), z, z[:, 0], texts, [f"{t}.wav" for t in texts])

    batches = [batch(["a", "b"], [8000, 6000]), None, batch(["c"], [4000])]
    em = collect_emissions(m, DataLoader(batches, batch_size=None, collate_fn=lambda b: b))
    assert m.training  # restored
    assert em.refs == ["a", "b", "c"] and len(em.batches) == 2
    (lp, n), (lp2, _) = em.batches
    assert lp.shape[0] == 2 and lp2.shape[0] == 1 and lp.shape[-1] == len(m.vocab)
    assert n.tolist()[0] > n.tolist()[1] > 0
    with torch.no_grad():
        expected, _ = m.eval()(batches[2].wave, batches[2].wave_lengths)
    torch.testing.assert_close(lp2, expected)
    assert len(em.greedy(m.vocab)) == 3
