"""ONNX export of the captioner: the encoder and the decoder step (the shared LSTM step with its state and the
attention) run in onnxruntime match PyTorch, and a greedy search driven by the ONNX step gives the module's
captions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from lstm_seq.export_files import ExportedFiles
from lstm_seq.vision.export import export_captioner
from lstm_seq.vision.module import CaptionModule
from lstm_seq.vision.vocab import Vocabulary
from tests.vision.conftest import WORDS, make_module

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

TOL = 1e-4


def _scene(seed: int, size: int = 32) -> Image.Image:
    """A picture with a couple of filled shapes on a plain background."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(2):
        x, y = (int(v) for v in rng.integers(0, size // 2, 2))
        box = (x, y, x + size // 3, y + size // 3)
        fill = tuple(int(v) for v in rng.integers(0, 255, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
    return img


@pytest.fixture(scope="module", params=["attention", pytest.param("show_tell", marks=pytest.mark.slow)])
def exported(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[CaptionModule, ExportedFiles]:
    # plain greedy (no repeated-n-gram penalty): the loop below is the search written out
    m = make_module(request.param, Vocabulary(WORDS), beam_size=1, max_len=8, no_repeat_ngram=0)
    return m, export_captioner(m, tmp_path_factory.mktemp("onnx"))


def _images(m: CaptionModule) -> torch.Tensor:
    real = torch.stack([m.transform(_scene(s)) for s in range(3)])
    return torch.cat([real, torch.randn(2, 3, 32, 32)])  # pictures and noise


def test_encoder_and_step_match_pytorch_and_greedy_search(
    exported: tuple[CaptionModule, ExportedFiles],
) -> None:
    m, files = exported
    enc = ort.InferenceSession(str(files.onnx["encoder"]), providers=["CPUExecutionProvider"])
    step = ort.InferenceSession(str(files.onnx["decoder_step"]), providers=["CPUExecutionProvider"])
    images = _images(m)
    outs = enc.run(None, {"images": images.numpy()})
    with torch.no_grad():
        grid, pooled = m.encoder(images)
        memory = m.decoder.prepare(grid, pooled)
        h, c = m.decoder.init_state(memory)
    attention = m.decoder.has_attention
    expected = [grid, pooled, h, c] + ([memory["keys"]] if attention else [])
    assert len(outs) == len(expected)
    for got, want in zip(outs, expected, strict=True):
        np.testing.assert_allclose(got, want.numpy(), atol=TOL, rtol=0)
    # greedy search with the ONNX step, checked against the PyTorch step at every position
    v = m.vocab
    tokens = np.full(len(images), v.start_id, dtype=np.int64)
    oh, oc = outs[2], outs[3]
    words = []
    for _ in range(6):
        feed = {"tokens": tokens, "h": oh, "c": oc}
        if attention:
            feed.update(grid=outs[0], keys=outs[4])
        res = step.run(None, feed)
        with torch.no_grad():
            logits, (h, c), alpha = m.decoder.step(torch.from_numpy(tokens), (h, c), memory)
        np.testing.assert_allclose(res[0], logits.numpy(), atol=TOL, rtol=0)
        np.testing.assert_allclose(res[1], h.numpy(), atol=TOL, rtol=0)
        np.testing.assert_allclose(res[2], c.numpy(), atol=TOL, rtol=0)
        if attention:
            np.testing.assert_allclose(res[3], alpha.numpy(), atol=TOL, rtol=0)
        allowed = res[0].copy()
        allowed[:, [v.start_id, v.pad_id]] = -np.inf  # never emitted, as in the module's search
        tokens, oh, oc = allowed.argmax(-1), res[1], res[2]
        h, c = torch.from_numpy(oh), torch.from_numpy(oc)  # both sides go on from the same state
        words.append(tokens)
    onnx_ids = torch.from_numpy(np.stack(words, 1))
    ref = m.generate(images, beam_size=1, max_len=6).tokens
    assert v.decode_batch(onnx_ids) == v.decode_batch(ref)


def test_step_batch_is_dynamic(exported: tuple[CaptionModule, ExportedFiles]) -> None:
    m, files = exported
    enc = ort.InferenceSession(str(files.onnx["encoder"]), providers=["CPUExecutionProvider"])
    step = ort.InferenceSession(str(files.onnx["decoder_step"]), providers=["CPUExecutionProvider"])
    one = enc.run(None, {"images": _images(m)[:1].numpy()})
    feed = {"tokens": np.array([m.vocab.start_id]), "h": one[2], "c": one[3]}
    if m.decoder.has_attention:
        feed.update(grid=one[0], keys=one[4])
    assert step.run(None, feed)[0].shape == (1, len(m.vocab))


def test_metadata(exported: tuple[CaptionModule, ExportedFiles]) -> None:
    m, files = exported
    meta = json.loads(files.metadata.read_text())
    assert meta["vocab"]["itos"] == m.vocab.itos and meta["vocab"]["start_id"] == m.vocab.start_id
    assert meta["transform"] == json.loads(json.dumps(m.transform.to_dict()))
    assert meta["attention"] == m.decoder.has_attention and meta["opset"] >= 17
    assert meta["graphs"]["decoder_step"]["inputs"][:3] == ["tokens", "h", "c"]


def test_onnx_graph_refuses_token_minus_one_and_an_empty_batch(
    exported: tuple[CaptionModule, ExportedFiles],
) -> None:
    """A token of -1 would be read as the vocabulary's last word (ONNX Gather wraps); a batch of 0 crashes
    onnxruntime: OnnxGraph refuses both, naming the file and the input."""
    from lstm_seq.onnx_graph import OnnxGraph

    m, files = exported
    enc, step = OnnxGraph(files.onnx["encoder"]), OnnxGraph(files.onnx["decoder_step"])
    one = enc.run({"images": _images(m)[:1].numpy()})
    feed = {"tokens": np.array([m.vocab.start_id]), "h": one["h0"], "c": one["c0"]}
    if m.decoder.has_attention:
        feed.update(grid=one["grid"], keys=one["keys"])
    assert step.run(feed)["logits"].shape == (1, len(m.vocab)) and step.vocab_size == len(m.vocab)
    for bad in (-1, len(m.vocab)):
        with pytest.raises(
            ValueError, match=rf"{files.onnx['decoder_step']}: input 'tokens' .* outside the vocabulary"
        ):
            step.run({**feed, "tokens": np.array([bad])})
    with pytest.raises(ValueError, match=r"input 'images' has an empty axis 0"):
        enc.run({"images": _images(m)[:0].numpy()})
