"""Streaming recognition: chunk by chunk, the unidirectional model gives the whole-clip log-probabilities (to
1e-4) and the same greedy transcript, partial texts grow as prefixes, and global CMVN comes from the training
clips and survives a checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from lstm_seq.audio.data.datasets import SpeechDataset
from lstm_seq.audio.data.manifest import Utterance
from lstm_seq.audio.decoding.decode import greedy_decode
from lstm_seq.audio.features import FeatureConfig, fit_dataset_cmvn, fit_global_cmvn
from lstm_seq.audio.module import ASRModule
from lstm_seq.audio.streaming import StreamingSession, check_streamable
from tests.audio.conftest import speechlike


def streaming_module(subsample: int = 4, seed: int = 0) -> ASRModule:
    torch.manual_seed(seed)
    m = ASRModule(
        features={"n_mfcc": 13, "cmvn": "global"},
        model={
            "subsample": subsample,
            "conv_channels": 4,
            "hidden_size": 24,
            "num_layers": 2,
            "bidirectional": False,
        },
    ).eval()
    fit_global_cmvn(m.featurizer, [speechlike(1.0, seed=s) for s in range(4)])
    with torch.no_grad():  # a random model barely changes its argmax: larger output weights make it talk
        m.acoustic.output.weight.normal_(0, 4.0)
    return m


def _clip() -> np.ndarray:
    """About 4.6 s: 46 chunks of 100 ms, 10 of 460 ms."""
    return np.concatenate([speechlike(1.9, seed=7), speechlike(1.4, seed=8), speechlike(1.3, seed=9)])[
        :73_457
    ]


@pytest.mark.parametrize("subsample", [4, 2, 1])
@pytest.mark.parametrize(
    "chunk", [1_601, 7_333]
)  # 100 ms and 458 ms, neither a multiple of the 160-sample hop
def test_streamed_equals_whole_utterance(subsample: int, chunk: int) -> None:
    m = streaming_module(subsample)
    wave = _clip()
    with torch.no_grad():
        ref, ref_len = m(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
    whole_text = greedy_decode(ref, ref_len, m.vocab)[0]
    session = StreamingSession(m)
    partials = [session.push(wave[i : i + chunk]) for i in range(0, len(wave), chunk)]
    final = session.finish()
    assert len(partials) >= 10
    lp = session.log_probs
    assert lp.shape == ref[0].shape
    torch.testing.assert_close(lp, ref[0], atol=1e-4, rtol=0)
    assert final == whole_text
    assert len(whole_text) >= 3  # not vacuous: the transcript has content
    for a, b in zip(partials, [*partials[1:], final], strict=True):  # partial texts only grow
        assert b.startswith(a)
    assert partials[len(partials) // 2] != ""  # text arrives before the end


def test_logmel_model_streams_exactly() -> None:
    """features.kind=logmel (40 bands, no Δ) streams to the whole clip's log-probs too."""
    torch.manual_seed(0)
    m = ASRModule(
        features={"kind": "logmel", "deltas": False, "cmvn": "global"},
        model={"subsample": 2, "conv_channels": 4, "hidden_size": 16, "bidirectional": False},
    ).eval()
    fit_global_cmvn(m.featurizer, [speechlike(1.0, seed=s) for s in range(4)])
    wave = _clip()
    with torch.no_grad():
        ref, _ = m(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
    session = StreamingSession(m)
    for i in range(0, len(wave), 1_601):
        session.push(wave[i : i + 1_601])
    session.finish()
    assert ref.shape[-1] == len(m.vocab) and m.featurizer.cmvn_mean.shape == (40,)
    torch.testing.assert_close(session.log_probs, ref[0], atol=1e-4, rtol=0)


def test_irregular_chunks_and_tensor_input() -> None:
    m = streaming_module()
    wave = _clip()
    with torch.no_grad():
        ref, _ = m(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.choice(len(wave), 40, replace=False))
    session = StreamingSession(m)
    for piece in np.split(wave, cuts):  # includes empty and 1-sample pieces
        session.push(torch.from_numpy(piece))
    session.finish()
    torch.testing.assert_close(session.log_probs, ref[0], atol=1e-4, rtol=0)
    with pytest.raises(RuntimeError, match="after finish"):
        session.push(wave[:100])


def test_not_streamable_models_are_refused() -> None:
    bi = ASRModule(
        features={"cmvn": "global"}, model={"bidirectional": True, "hidden_size": 8, "conv_channels": 2}
    )
    with pytest.raises(ValueError, match="bidirectional"):
        check_streamable(bi)
    utt = ASRModule(
        features={"cmvn": "utterance"}, model={"bidirectional": False, "hidden_size": 8, "conv_channels": 2}
    )
    with pytest.raises(ValueError, match="whole clip"):
        StreamingSession(utt)


def test_cmvn_option_names_and_global_statistics(tmp_path: Path) -> None:
    assert FeatureConfig(cmvn=True).cmvn == "utterance"  # configs and checkpoints before the option
    assert FeatureConfig(cmvn=False).cmvn == "none"
    assert FeatureConfig(cmvn="True").cmvn == "utterance" and FeatureConfig().cmvn == "utterance"
    with pytest.raises(ValueError, match="cmvn"):
        FeatureConfig(cmvn="sometimes")
    m = streaming_module()
    fe = m.featurizer
    waves = [speechlike(1.0, seed=s) for s in range(4)]
    lengths = torch.tensor([len(w) for w in waves])
    raw, _ = fe.unnormalised(torch.from_numpy(np.stack(waves)), lengths)
    flat = raw.reshape(-1, raw.shape[-1]).double()
    torch.testing.assert_close(fe.cmvn_mean.double(), flat.mean(0), atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(fe.cmvn_std.double(), flat.std(0, unbiased=False), atol=1e-4, rtol=1e-4)
    normed, _ = fe(torch.from_numpy(np.stack(waves)), lengths)
    torch.testing.assert_close(
        normed.reshape(-1, raw.shape[-1]).mean(0), torch.zeros(raw.shape[-1]), atol=1e-4, rtol=0
    )
    # the statistics live in the state dict, so a checkpoint carries them
    state = m.state_dict()
    assert {"featurizer.cmvn_mean", "featurizer.cmvn_std", "featurizer.cmvn_frames"} <= set(state)
    other = ASRModule(**{k: m.hparams[k] for k in ("vocab", "features", "model")})
    assert not other.featurizer.fitted
    other.load_state_dict(state)
    assert other.featurizer.fitted and torch.equal(other.featurizer.cmvn_mean, fe.cmvn_mean)
    # and an old per-utterance module has no such keys (its checkpoints still load)
    assert not any("cmvn" in k for k in ASRModule(features={"cmvn": True}).state_dict())


def test_global_cmvn_from_a_training_split(tmp_path: Path) -> None:
    waves = [speechlike(0.8 + 0.1 * i, seed=i) for i in range(5)]
    utts = []
    for i, w in enumerate(waves):
        sf.write(tmp_path / f"{i}.wav", w, 16000, subtype="FLOAT")
        utts.append(Utterance(str(tmp_path / f"{i}.wav"), len(w) / 16000, "go left"))
    ds = SpeechDataset(utts, ASRModule().vocab, check_files=False)
    m = ASRModule(
        features={"cmvn": "global"}, model={"bidirectional": False, "hidden_size": 8, "conv_channels": 2}
    )
    n = fit_dataset_cmvn(m.featurizer, ds, max_utterances=3)  # every 2nd clip: 0, 2, 4
    ref = ASRModule(
        features={"cmvn": "global"}, model={"bidirectional": False, "hidden_size": 8, "conv_channels": 2}
    )
    assert n == fit_global_cmvn(ref.featurizer, waves[::2])
    torch.testing.assert_close(m.featurizer.cmvn_mean, ref.featurizer.cmvn_mean)
    torch.testing.assert_close(m.featurizer.cmvn_std, ref.featurizer.cmvn_std)
