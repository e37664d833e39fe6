"""MFCC / log-mel front end: torchaudio vs librosa, chunk consistency, CMVN, SpecAugment."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lstm_seq.audio.features import MFCC, FeatureConfig, SpecAugment, compute_features, librosa_mfcc

from .conftest import speechlike


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_torchaudio_matches_librosa_on_speechlike_audio() -> None:
    """The acceptance check: ≤ 1e-3 relative error for the default settings, in a padded batch."""
    cfg = FeatureConfig()
    waves = [speechlike(1.3, seed=1), speechlike(0.7, seed=2), speechlike(2.0, seed=3)]
    feats, frames = compute_features(waves, cfg)
    assert feats.shape == (3, cfg.num_frames(len(waves[2])), cfg.dim)
    for i, w in enumerate(waves):
        ref = torch.from_numpy(librosa_mfcc(w, cfg))
        assert int(frames[i]) == ref.shape[0] == cfg.num_frames(len(w))
        assert _rel(feats[i, : frames[i]], ref) <= 1e-3
        assert torch.all(feats[i, frames[i] :] == 0)  # padding stays zero


def test_default_mfcc_matches_librosa_before_cmvn() -> None:
    """The default front end before CMVN (which would hide any per-coefficient offset or scale: a wrong log
    base, floor, DCT normalisation or filterbank gain) against librosa with the same settings, coefficient by
    coefficient: the 13 cepstra, their Δ and ΔΔ."""
    cfg = FeatureConfig()
    assert cfg.cmvn == "utterance" and cfg.deltas  # the default normalises; compared here without it
    waves = [speechlike(1.3, seed=1), speechlike(0.7, seed=2)]
    padded = torch.zeros(2, len(waves[0]))
    for i, w in enumerate(waves):
        padded[i, : len(w)] = torch.from_numpy(w)
    lengths = torch.tensor([len(w) for w in waves])
    module = MFCC(cfg)
    raw, frames = module.unnormalised(padded, lengths)
    for i, w in enumerate(waves):
        ref = torch.from_numpy(librosa_mfcc(w, dataclasses.replace(cfg, cmvn="none")))
        ours = raw[i, : frames[i]]
        assert ours.shape == ref.shape == (cfg.num_frames(len(w)), cfg.dim)
        for j in range(cfg.dim):
            assert _rel(ours[:, j], ref[:, j]) <= 1e-3, j
        assert float(ref[:, 0].abs().mean()) > 1.0  # real levels: c0 is far from its normalised 0
    normed, _ = module(padded, lengths)
    assert torch.allclose(normed, module.normalise(raw, frames))


@pytest.mark.parametrize(
    "overrides",
    [
        {"mel_scale": "slaney", "mel_norm": "slaney", "deltas": False, "cmvn": False},
        {"center": True, "n_mfcc": 20, "n_mels": 64},
        {"kind": "logmel", "deltas": False},
        {"kind": "logmel", "n_mels": 64, "cmvn": False},
    ],
)
def test_backends_agree_for_other_settings(overrides: dict) -> None:
    cfg = FeatureConfig(**overrides)
    w = speechlike(1.0, seed=4)
    feats, frames = compute_features([w], cfg)
    ref = torch.from_numpy(librosa_mfcc(w, cfg))
    assert _rel(feats[0, : frames[0]], ref) <= 1e-3


def test_logmel_is_the_mfcc_before_the_dct() -> None:
    """kind="logmel" gives the n_mels log-mel bands; their orthonormal DCT is exactly the MFCC."""
    import torchaudio.functional as AF

    mfcc_cfg = FeatureConfig(deltas=False, cmvn="none")
    logmel_cfg = FeatureConfig(kind="logmel", deltas=False, cmvn="none")
    assert logmel_cfg.dim == logmel_cfg.n_mels == 40 and mfcc_cfg.dim == mfcc_cfg.n_mfcc == 13
    assert FeatureConfig(kind="logmel").dim == 3 * 40  # with Δ and ΔΔ
    waves = [speechlike(1.1, seed=6), speechlike(0.6, seed=7)]
    mfcc, n1 = compute_features(waves, mfcc_cfg)
    logmel, n2 = compute_features(waves, logmel_cfg)
    assert torch.equal(n1, n2) and logmel.shape[-1] == 40
    dct = AF.create_dct(mfcc_cfg.n_mfcc, mfcc_cfg.n_mels, norm="ortho")
    torch.testing.assert_close(logmel @ dct, mfcc, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="kind"):
        FeatureConfig(kind="mel")


def test_logmel_module_end_to_end_and_old_checkpoints_stay_mfcc() -> None:
    """An ASRModule on log-mel input sizes its model by n_mels; a stored feature dict without ``kind``
    (checkpoints written before the option) still means MFCC."""
    from lstm_seq.audio.module import ASRModule

    module = ASRModule(features={"kind": "logmel", "deltas": False, "n_mels": 32}).eval()
    assert module.feature_cfg.dim == 32
    wave = torch.from_numpy(np.stack([speechlike(1.0, seed=8), speechlike(1.0, seed=9)]))
    log_probs, _ = module(wave, torch.tensor([16000, 12000]))
    assert log_probs.shape[0] == 2 and torch.isfinite(log_probs).all()
    old = {k: v for k, v in FeatureConfig().to_dict().items() if k != "kind"}
    assert FeatureConfig.from_dict(old).kind == "mfcc" and FeatureConfig.from_dict(old).dim == 39


def test_chunk_features_equal_whole_clip_frames() -> None:
    """No clip-relative clamp and no centre padding: a chunk starting at a hop multiple gives the same
    frames as the whole clip (CMVN and deltas off: they depend on the neighbourhood by design)."""
    cfg = FeatureConfig(cmvn=False, deltas=False)
    w = speechlike(3.0, seed=5)
    w[:16000] *= 0.01  # a quiet first second must not change the loud part's features
    whole, _ = compute_features([w], cfg)
    start = 160 * 120
    part, n = compute_features([w[start:]], cfg)
    torch.testing.assert_close(part[0, : n[0]], whole[0, 120 : 120 + n[0]], rtol=1e-5, atol=1e-5)


def test_cmvn_statistics_and_silence_floor() -> None:
    cfg = FeatureConfig()
    feats, frames = compute_features([speechlike(1.0), np.zeros(8000, np.float32)], cfg)
    valid = feats[0, : frames[0]]
    torch.testing.assert_close(valid.mean(0), torch.zeros(cfg.dim), atol=1e-4, rtol=0)
    torch.testing.assert_close(valid.std(0, unbiased=False), torch.ones(cfg.dim), atol=1e-2, rtol=0)
    assert torch.isfinite(feats[1]).all()  # digital silence hits the log floor, no -inf


def test_too_short_clip_has_zero_frames() -> None:
    cfg = FeatureConfig()
    feats, frames = compute_features([np.ones(100, np.float32) * 0.1], cfg)
    assert int(frames[0]) == 0 and torch.isfinite(feats).all()


def test_specaugment_only_in_training() -> None:
    torch.manual_seed(0)
    aug = SpecAugment(freq_masks=2, freq_width=5, time_masks=2, time_width=10)
    x = torch.randn(4, 100, 39) + 5
    frames = torch.tensor([100, 80, 60, 40])
    aug.eval()
    assert torch.equal(aug(x, frames), x)
    aug.train()
    y = aug(x, frames)
    assert y.shape == x.shape and (y == 0).any() and (y != 0).any()
    # masks are whole rows/columns: every zero lies in a fully masked time step or feature bin
    zero = y == 0
    assert torch.all(zero.all(2, keepdim=True) | zero.all(1, keepdim=True) | ~zero)


def test_mfcc_module_on_device_buffers_not_in_state_dict() -> None:
    m = MFCC(FeatureConfig())
    assert m.state_dict() == {}  # rebuilt from the config, so a checkpoint cannot carry stale filters


def test_backends_agree_on_synthetic_speech(tiny_corpus: dict) -> None:
    from lstm_seq.audio.data.io import load_audio
    from lstm_seq.audio.data.manifest import read_manifest

    cfg = FeatureConfig()
    waves = [load_audio(u.audio_filepath) for u in read_manifest(tiny_corpus["test"])[:3]]
    feats, frames = compute_features(waves, cfg)
    for i, w in enumerate(waves):
        assert _rel(feats[i, : frames[i]], torch.from_numpy(librosa_mfcc(w, cfg))) <= 1e-3
