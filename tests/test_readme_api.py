"""The Python API examples of the docs run as written (section "Using a trained model from Python", in
README.md or docs/*.md), on tiny untrained checkpoints and generated audio and images; only the names the
text says come from the reader (``ckpt``, ``ckpt_unilstm``) are provided."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from PIL import Image

from lstm_seq.audio.decoding.setup import DecodingSetup
from lstm_seq.audio.features import fit_global_cmvn
from lstm_seq.audio.module import ASRModule
from lstm_seq.vision.vocab import Vocabulary
from tests._docs import ROOT, doc_files, fenced_blocks, section
from tests.audio.conftest import speechlike
from tests.vision.conftest import make_module

SECTION = "Using a trained model from Python"


def _blocks() -> tuple[str, list[str]]:
    """The file that holds the section, and the section's Python examples."""
    found = [(doc, body) for doc in doc_files() if (body := section(doc.read_text(), SECTION)) is not None]
    assert len(found) == 1, f"the section {SECTION!r} is in exactly one of README.md, docs/*.md: {found}"
    doc, body = found[0]
    return doc.relative_to(ROOT).as_posix(), [code for lang, code in fenced_blocks(body) if lang == "python"]


def _asr_ckpt(path: Path, **kw: object) -> Path:
    torch.manual_seed(0)
    m = ASRModule(**kw)  # type: ignore[arg-type]
    m.decoding = DecodingSetup.from_texts(["turn left", "go to the door"])
    if m.feature_cfg.cmvn == "global":
        fit_global_cmvn(m.featurizer, [speechlike(1.0, seed=s) for s in range(3)])
    ckpt = {"state_dict": m.state_dict(), "hyper_parameters": dict(m.hparams)}
    m.on_save_checkpoint(ckpt)
    torch.save(ckpt, path)
    return path


def test_readme_api_examples_run(tmp_path: Path) -> None:
    where, blocks = _blocks()
    assert len(blocks) == 3, "the section's examples: Recognizer, Captioner, streaming"
    (tmp_path / "clips").mkdir()
    sf.write(tmp_path / "clips" / "a.wav", speechlike(1.2, seed=1), 16000)
    sf.write(tmp_path / "clips" / "bad.wav", np.zeros(0, np.float32), 16000)
    sf.write(tmp_path / "one.wav", speechlike(0.9, seed=2), 16000)
    (tmp_path / "photos").mkdir()
    rng = np.random.default_rng(0)
    for name in ("photos/x.png", "photos/y.jpg", "cat.jpg"):
        Image.fromarray(rng.integers(0, 255, (36, 44, 3), dtype=np.uint8)).save(tmp_path / name)
    small = {"hidden_size": 16, "num_layers": 1, "conv_channels": 4}
    asr = _asr_ckpt(tmp_path / "asr.ckpt", model=small)
    uni = _asr_ckpt(
        tmp_path / "uni.ckpt", model={**small, "bidirectional": False}, features={"cmvn": "global"}
    )
    cap_module = make_module("attention", Vocabulary(["a", "red", "circle", "left", "of"]))
    cap = tmp_path / "cap.ckpt"
    torch.save({"state_dict": cap_module.state_dict(), "hyper_parameters": dict(cap_module.hparams)}, cap)
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        outputs = []
        for block, ckpt in zip(blocks, (asr, cap, uni), strict=True):
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                exec(
                    compile(block, where, "exec"),
                    {"ckpt": str(ckpt), "ckpt_unilstm": str(uni)},
                )
            outputs.append(buf.getvalue())
    finally:
        os.chdir(old)
    asr_out, cap_out, stream_out = outputs
    assert "clips/a.wav" in asr_out and "one.wav" in asr_out and "confidence" in asr_out
    assert "clips/bad.wav failed:" in asr_out  # the bad file's reason, and the call went on
    assert all(name in cap_out for name in ("photos/x.png", "photos/y.jpg", "cat.jpg"))
    assert len(stream_out.splitlines()) == 5 + 1  # 0.9 s in 200-ms chunks, then the final text
