"""The Python API of the captioner: every item type, per-item errors, batching, attention maps, N-best, and
``pipelines.caption.generate``'s rows being the API's results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lstm_seq.vision import Captioner
from lstm_seq.vision.generate import caption_folder
from lstm_seq.vision.vocab import Vocabulary
from tests.vision.conftest import make_module


def _images(root: Path) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        p = root / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (40 + 7 * i, 48, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    (root / "broken.png").write_bytes(b"not a png")
    return paths


@pytest.fixture(scope="module")
def attention_module() -> object:
    return make_module("attention", Vocabulary(["a", "red", "blue", "circle", "square", "left", "of"]))


def test_every_item_type_gives_the_files_caption(attention_module, tmp_path: Path) -> None:
    cap = Captioner(attention_module)
    paths = _images(tmp_path / "imgs")
    pil = Image.open(paths[0]).convert("RGB")
    chw = torch.from_numpy(np.array(pil)).permute(2, 0, 1)  # uint8 (3, H, W)
    items = [paths[0], str(tmp_path / "imgs"), pil, chw, chw.float() / 255, torch.stack([chw, chw]),
             tmp_path / "missing.png", torch.zeros(2, 5, 5), torch.full((3, 4, 4), 2.0), 7]  # fmt: skip
    out = cap.caption(items, batch_size=3)
    first = out[0]
    assert first.ok and first.text and first.path == str(paths[0])
    folder = out[1:7]  # broken.png + img0..img4, sorted
    assert [Path(r.path).name for r in folder] == ["broken.png"] + [p.name for p in paths]
    assert not folder[0].ok and "broken.png" in folder[0].error
    assert folder[1].text == first.text
    same = out[7:12]  # the PIL image, the uint8 tensor, the float tensor, the batch of two
    assert all(r.ok for r in same) and {r.text for r in same} == {first.text}
    assert [r.path for r in same] == ["<image 2>", "<image 3>", "<image 4>", "<image 5.0>", "<image 5.1>"]
    bad = out[12:]
    assert [r.ok for r in bad] == [False] * 4
    assert "missing.png" in bad[0].error and "(3, H, W)" in bad[1].error and "[0, 1]" in bad[2].error
    assert "not a path" in bad[3].error
    alone = [cap.caption(p, batch_size=1)[0].text for p in paths]
    assert [r.text for r in folder[1:]] == alone  # batched = one at a time


def test_attention_and_nbest(attention_module, tmp_path: Path) -> None:
    cap = Captioner(attention_module)
    p = _images(tmp_path / "imgs")[1]
    r = cap.caption(p, beam_size=4, nbest=3, attention=True)[0]
    n_words = len(r.text.split())
    assert (
        r.attention is not None
    )  # one row per word, and one for <end> unless the caption was cut at max_len
    assert r.attention.shape[0] == min(n_words + 1, attention_module.settings["max_len"])
    np.testing.assert_allclose(r.attention.sum(-1), 1.0, atol=1e-4)  # a distribution over the cells per token
    assert r.nbest is not None and 1 <= len(r.nbest) <= 3 and r.nbest[0] == (r.text, pytest.approx(r.score))
    scores = [s for _, s in r.nbest]
    assert scores == sorted(scores, reverse=True)
    assert cap.caption(p, beam_size=4)[0].text == r.text
    with pytest.raises(ValueError, match="beam_size"):
        cap.caption(p, beam_size=2, nbest=3)


def test_mode_generate_rows_are_the_apis_results(attention_module, tmp_path: Path) -> None:
    _images(tmp_path / "imgs")
    metrics = caption_folder(attention_module, tmp_path / "imgs", tmp_path / "out", batch_size=2)
    rows = [json.loads(x) for x in (tmp_path / "out" / "captions.jsonl").read_text().splitlines()]
    api = Captioner(attention_module).caption(tmp_path / "imgs")
    assert rows == [
        {"path": r.path, "caption": r.text} if r.ok else {"path": r.path, "error": r.error} for r in api
    ]
    assert metrics == {"generate/images": 6, "generate/captioned": 5, "generate/errors": 1}
    assert (tmp_path / "out" / "captions.html").read_text().count('class="item"') == 5
