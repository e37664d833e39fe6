"""ONNX export of the acoustic model: onnxruntime matches PyTorch on random and speech-like input, padded
batches included (valid frames only; each row of a padded batch equals the clip run alone)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lstm_seq.audio.export import export_acoustic_model
from lstm_seq.audio.features import fit_global_cmvn
from lstm_seq.audio.module import ASRModule
from lstm_seq.export_files import ExportedFiles
from tests.audio.conftest import speechlike

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

TOL = 1e-4


def tiny_module(bidirectional: bool, cmvn: str) -> ASRModule:
    torch.manual_seed(0)
    m = ASRModule(
        features={"n_mfcc": 13, "cmvn": cmvn},
        model={
            "subsample": 4,
            "conv_channels": 4,
            "hidden_size": 16,
            "num_layers": 2,
            "bidirectional": bidirectional,
        },
    ).eval()
    if cmvn == "global":
        fit_global_cmvn(m.featurizer, [speechlike(1.0, seed=s) for s in range(3)])
    return m


@pytest.fixture(
    scope="module", params=[(True, "utterance"), (False, "global")], ids=["bilstm", "unilstm-global"]
)
def exported(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ASRModule, ExportedFiles]:
    bidirectional, cmvn = request.param
    m = tiny_module(bidirectional, cmvn)
    return m, export_acoustic_model(m, tmp_path_factory.mktemp("onnx"), torch_export=False)


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _padded(waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(w) for w in waves])
    batch = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.from_numpy(w)
    return batch, lengths


def _assert_valid_close(a: np.ndarray, b: torch.Tensor, lengths: np.ndarray) -> None:
    assert a.shape[0] == b.shape[0]
    for i, n in enumerate(lengths):
        np.testing.assert_allclose(a[i, :n], b[i, :n].numpy(), atol=TOL, rtol=0)


def test_waveform_graph_matches_pytorch_padded_and_alone(exported: tuple[ASRModule, ExportedFiles]) -> None:
    m, files = exported
    sess = _session(files.onnx["waveform"])
    rng = np.random.default_rng(0)
    waves = [
        speechlike(2.3, seed=1),
        speechlike(0.9, seed=2),
        (0.1 * rng.standard_normal(17_001)).astype(np.float32),
    ]
    wave, lengths = _padded(waves)
    lp, ol = sess.run(None, {"waveform": wave.numpy(), "wave_lengths": lengths.numpy()})
    with torch.no_grad():
        ref, ref_len = m(wave, lengths)
    np.testing.assert_array_equal(ol, ref_len.numpy())
    _assert_valid_close(lp, ref, ol)
    for i, w in enumerate(waves):  # a padded row's valid frames equal the clip alone (in ONNX too)
        alone, alone_len = sess.run(None, {"waveform": w[None], "wave_lengths": np.array([len(w)])})
        assert alone_len[0] == ol[i]
        np.testing.assert_allclose(lp[i, : ol[i]], alone[0], atol=TOL, rtol=0)


def test_features_graph_matches_pytorch(exported: tuple[ASRModule, ExportedFiles]) -> None:
    m, files = exported
    sess = _session(files.onnx["features"])
    torch.manual_seed(1)
    frames = torch.tensor([203, 57, 120])
    feats = torch.randn(3, 203, m.feature_cfg.dim) * (torch.arange(203)[None] < frames[:, None])[..., None]
    lp, ol = sess.run(None, {"features": feats.numpy(), "frames": frames.numpy()})
    with torch.no_grad():
        ref, ref_len = m.acoustic(feats, frames)
        ref = ref.float().log_softmax(-1)
    np.testing.assert_array_equal(ol, ref_len.numpy())
    _assert_valid_close(lp, ref, ol)
    # the module's own features of speech-like audio (what a server computing MFCCs itself would feed)
    wave, lengths = _padded([speechlike(1.7, seed=3), speechlike(1.1, seed=4)])
    with torch.no_grad():
        f, fr = m.featurizer(wave, lengths)
        ref, ref_len = m.acoustic(f, fr)
    lp, ol = sess.run(None, {"features": f.numpy(), "frames": fr.numpy()})
    _assert_valid_close(lp, ref.float().log_softmax(-1), ol)


def test_metadata_carries_vocab_features_and_decoding(exported: tuple[ASRModule, ExportedFiles]) -> None:
    m, files = exported
    meta = json.loads(files.metadata.read_text())
    assert meta["vocab"]["tokens"] == m.vocab.tokens and meta["vocab"]["blank"] == 0
    assert meta["features"]["cmvn"] == m.feature_cfg.cmvn and meta["opset"] >= 17
    assert meta["versions"]["torch"] == torch.__version__
    assert meta["subsample"] == 4 and meta["feature_dim"] == m.feature_cfg.dim
    if m.feature_cfg.cmvn == "global":
        np.testing.assert_allclose(meta["features"]["cmvn_mean"], m.featurizer.cmvn_mean.numpy(), rtol=1e-6)
    assert set(meta["files"]) >= {"features", "waveform"}
    assert meta["opsets"] == {"features": 18, "waveform": 18}
    assert files.extra["decoding"].is_file()


@pytest.mark.slow
def test_torch_export_program_matches(tmp_path: Path) -> None:
    m = tiny_module(True, "utterance")
    files = export_acoustic_model(m, tmp_path, waveform=False, torch_export=True)
    program = torch.export.load(files.extra["torch_export_features"])
    frames = torch.tensor([90, 33])
    feats = torch.randn(2, 90, m.feature_cfg.dim) * (torch.arange(90)[None] < frames[:, None])[..., None]
    lp, ol = program.module()(feats, frames)
    with torch.no_grad():
        ref, ref_len = m.acoustic(feats, frames)
    assert ol.tolist() == ref_len.tolist()
    _assert_valid_close(lp.detach().numpy(), ref.float().log_softmax(-1), ol.numpy())


def test_onnx_graph_refuses_an_empty_batch_and_runs_the_rest(
    exported: tuple[ASRModule, ExportedFiles],
) -> None:
    """onnxruntime crashes (SIGSEGV) on a batch of 0 with these graphs: OnnxGraph refuses it, naming file and
    input, and otherwise gives the session's own outputs."""
    from lstm_seq.onnx_graph import OnnxGraph

    m, files = exported
    wave, lengths = _padded([speechlike(0.6, seed=5)])
    for name, feed in [
        ("waveform", {"waveform": wave.numpy(), "wave_lengths": lengths.numpy()}),
        (
            "features",
            {"features": np.zeros((1, 40, m.feature_cfg.dim), np.float32), "frames": np.array([40])},
        ),
    ]:
        graph = OnnxGraph(files.onnx[name])
        out = graph.run(feed)
        ref = _session(files.onnx[name]).run(None, feed)
        np.testing.assert_array_equal(out["log_probs"], ref[0])
        empty = {k: v[:0] for k, v in feed.items()}
        with pytest.raises(
            ValueError, match=rf"{files.onnx[name]}: input '{next(iter(feed))}' has an empty axis 0"
        ):
            graph.run(empty)
        with pytest.raises(ValueError, match="do not match"):
            graph.run({next(iter(feed)): next(iter(feed.values()))})
