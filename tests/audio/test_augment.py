"""Waveform augmentation: determinism, train-only, speed changes the duration, perturbed audio stays decodable."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lstm_seq.audio.data.augment import (
    AugmentConfig,
    Augmenter,
    band_limit,
    coloured_noise,
    filter_wave,
    mix_at_snr,
    room_impulse_response,
    speed_perturb,
    warp_filterbanks,
)
from lstm_seq.audio.data.datamodule import ASRDataModule
from lstm_seq.audio.data.io import load_audio
from lstm_seq.audio.decoding.decode import greedy_decode
from lstm_seq.audio.features import MFCC, FeatureConfig
from lstm_seq.audio.module import ASRModule, ctc_feasible
from lstm_seq.audio.vocab import CharVocab
from lstm_seq.training.sampler import SeededIndex

from .conftest import speechlike

ALL_ON = AugmentConfig(
    speed_p=1, vtlp_p=1, reverb_p=1, eq_p=1, bandlimit_p=1, telephone_p=0.5, noise_p=1, babble_p=1
)


def _other(rng: np.random.Generator) -> np.ndarray:
    return speechlike(1.0, seed=int(rng.integers(100)))


@pytest.mark.parametrize("cfg", [AugmentConfig(), ALL_ON], ids=["default", "all-on"])
def test_same_seed_same_audio(cfg: AugmentConfig) -> None:
    wave = speechlike(2.0)
    aug = Augmenter(cfg, 16000)
    a, wa = aug(wave, np.random.default_rng(7), others=_other)
    b, wb = aug(wave, np.random.default_rng(7), others=_other)
    c, _ = aug(wave, np.random.default_rng(8), others=_other)
    assert np.array_equal(a, b) and wa == wb
    assert a.dtype == np.float32 and np.all(np.isfinite(a)) and np.abs(a).max() <= 1.0
    assert not (a.shape == c.shape and np.array_equal(a, c))


def test_disabled_is_identity() -> None:
    wave = speechlike(1.0)
    out, warp = Augmenter(AugmentConfig(enabled=False), 16000)(wave, np.random.default_rng(0))
    assert out is wave and warp == 1.0


@pytest.mark.parametrize("factor", [0.9, 1.1, 0.85, 1.17])
def test_speed_perturbation_changes_duration_by_the_factor(factor: float) -> None:
    wave = speechlike(2.0)
    out = speed_perturb(wave, factor)
    assert out.shape[0] == pytest.approx(wave.shape[0] / factor, abs=2)
    assert speed_perturb(wave, 1.0) is wave


def test_filters_and_noise() -> None:
    sr, rng = 16000, np.random.default_rng(0)
    wave = speechlike(1.5)
    rir = room_impulse_response(rng, sr, rt60=0.4, drr_db=3.0)
    assert rir[0] == 1.0 and abs(10 * np.log10(1 / np.sum(rir[1:] ** 2)) - 3.0) < 1e-3
    wet = filter_wave(wave, sr, rir, [])
    assert wet.shape == wave.shape and np.corrcoef(wet, wave)[0, 1] > 0.3
    # telephone band: energy above 4 kHz goes
    tel = filter_wave(wave, sr, None, [band_limit(300, 3400)])
    spec_in, spec_out = np.abs(np.fft.rfft(wave)), np.abs(np.fft.rfft(tel))
    freqs = np.fft.rfftfreq(wave.shape[0], 1 / sr)
    assert spec_out[freqs > 4500].sum() < 0.05 * spec_in[freqs > 4500].sum()
    noise = coloured_noise(rng, 16000, 1.0)
    assert abs(float(np.sqrt(np.mean(noise**2))) - 1) < 1e-4
    mixed = mix_at_snr(wave, noise, 10.0)
    snr = 10 * np.log10(np.mean(wave**2) / np.mean((mixed - wave) ** 2))
    assert snr == pytest.approx(10.0, abs=0.01)


def test_vtlp_warp() -> None:
    mfcc = MFCC(FeatureConfig())
    fb = warp_filterbanks(mfcc.fbanks, torch.tensor([1.0, 0.88, 1.12]))
    assert fb.shape == (3, *mfcc.fbanks.shape)
    assert torch.allclose(fb[0], mfcc.fbanks)
    centre = (fb.argmax(1).float() - mfcc.fbanks.argmax(0).float()).mean(1)  # filter peaks move
    assert centre[1] > 0 > centre[2]
    wave = torch.from_numpy(np.stack([speechlike(1.0), speechlike(1.0, seed=1)]))
    lengths = torch.tensor([16000, 16000])
    plain, _ = mfcc(wave, lengths)
    ones, _ = mfcc(wave, lengths, torch.ones(2))
    warped, _ = mfcc(wave, lengths, torch.tensor([1.0, 1.1]))
    assert torch.equal(plain, ones)
    assert torch.allclose(warped[0], plain[0], atol=1e-5) and not torch.allclose(warped[1], plain[1])


def test_perturbed_utterance_stays_decodable() -> None:
    """The strongest settings still give finite, CTC-feasible posteriors that decode, at every speed."""
    vocab = CharVocab()
    module = ASRModule(vocab.to_dict(), {"n_mfcc": 13}, {"hidden_size": 16, "num_layers": 1}).eval()
    text = "turn left at the third red door"
    tokens = torch.tensor([vocab.encode(text)])
    strong = replace(ALL_ON, speed=(1.2, 1.2), noise_snr_db=(0.0, 0.0))
    for cfg in (ALL_ON, strong):
        wave, warp = Augmenter(cfg, 16000)(speechlike(2.0), np.random.default_rng(3), others=_other)
        assert float(np.sqrt(np.mean(wave**2))) > 1e-3  # not silenced
        w, n = torch.from_numpy(wave)[None], torch.tensor([wave.shape[0]])
        with torch.no_grad():
            feats, frames = module.featurizer(w, n, torch.tensor([warp]))
            logits, out_lengths = module.acoustic(feats, frames)
        assert torch.isfinite(feats).all() and torch.isfinite(logits).all()
        assert bool(ctc_feasible(out_lengths, tokens, torch.tensor([tokens.shape[1]])).all())
        with torch.no_grad():
            log_probs, lengths = module(w, n)
        assert isinstance(greedy_decode(log_probs, lengths, vocab)[0], str)


def test_train_split_only(tiny_corpus: dict[str, Path]) -> None:
    dm = ASRDataModule(dict(tiny_corpus), CharVocab(), max_frames=2000, augment=ALL_ON)
    assert dm.dataset("train").augment is not None
    assert dm.dataset("val").augment is None and dm.dataset("test").augment is None
    for split in ("val", "test"):
        loader = dm.val_dataloader() if split == "val" else dm.test_dataloader()
        ds = dm.dataset(split)
        for batch in loader:
            assert batch.warp is None
            for i, path in enumerate(batch.paths):
                raw = load_audio(path, 16000)
                assert torch.equal(batch.wave[i, : int(batch.wave_lengths[i])], torch.from_numpy(raw))
        assert len(ds) > 0
    train = dm.train_dataloader()
    batch = next(iter(train))
    assert batch.warp is not None and batch.warp.shape == (len(batch),)
    changed = 0
    for i, path in enumerate(batch.paths):
        raw = torch.from_numpy(load_audio(path, 16000))
        got = batch.wave[i, : int(batch.wave_lengths[i])]
        changed += int(got.shape != raw.shape or not torch.equal(got, raw))
    assert changed == len(batch)
    # the same (seed, epoch, index) gives the same audio, another epoch another one
    ds = dm.dataset("train")
    a, b = ds[SeededIndex(0, 11)], ds[SeededIndex(0, 11)]
    c = ds[SeededIndex(0, 12)]
    assert torch.equal(a["wave"], b["wave"]) and a["warp"] == b["warp"]
    assert not (a["wave"].shape == c["wave"].shape and torch.equal(a["wave"], c["wave"]))


def test_training_without_augmentation_is_unchanged(tiny_corpus: dict[str, Path]) -> None:
    for aug in (None, AugmentConfig(enabled=False)):
        dm = ASRDataModule(dict(tiny_corpus), CharVocab(), max_frames=2000, augment=aug)
        assert dm.dataset("train").augment is None
        batch = next(iter(dm.train_dataloader()))
        assert batch.warp is None
        raw = torch.from_numpy(load_audio(batch.paths[0], 16000))
        assert torch.equal(batch.wave[0, : int(batch.wave_lengths[0])], raw)


def test_resumed_loader_gives_the_same_augmented_batches(tiny_corpus: dict[str, Path]) -> None:
    """Mid-epoch resume: a fresh loader told where the epoch stopped yields exactly the remaining batches,
    augmented audio included (draws depend on (seed, epoch, index), not on the iteration)."""

    def loader() -> Any:
        dm = ASRDataModule(dict(tiny_corpus), CharVocab(), max_frames=1500, augment=ALL_ON, seed=3)
        return dm.train_dataloader()

    first = loader()
    first.batch_sampler.set_epoch(1)
    whole = [(b.paths, b.wave, b.warp) for b in first]
    assert len(whole) >= 3
    resumed = loader()
    resumed.load_state_dict({"epoch": 1, "batches_done": 2, "num_replicas": 1})
    rest = [(b.paths, b.wave, b.warp) for b in resumed]
    assert len(rest) == len(whole) - 2
    for (pa, wa, ka), (pb, wb, kb) in zip(whole[2:], rest, strict=True):
        assert pa == pb and torch.equal(wa, wb) and torch.equal(ka, kb)
