"""Chunked transcription of a folder and checkpoint handling, with a tiny untrained model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lstm_seq.audio.decoding.setup import DecodingSetup
from lstm_seq.audio.module import ASRModule, CheckpointError
from lstm_seq.audio.recognizer import Recognizer, chunk_bounds
from lstm_seq.audio.transcribe import transcribe_to_jsonl


def _tiny() -> ASRModule:
    torch.manual_seed(0)
    return ASRModule(model={"hidden_size": 8, "num_layers": 1, "conv_channels": 2})


def test_chunk_bounds_cover_and_cut_at_silence() -> None:
    rng = np.random.default_rng(0)
    wave = rng.standard_normal(10_000).astype(np.float32)
    wave[3_400:3_500] = 0  # a pause just before the 4,000-sample limit
    bounds = chunk_bounds(wave, chunk=4_000, search=1_000, hop=100)
    assert bounds[0] == (0, 3_400)
    assert all(e - s <= 4_000 for s, e in bounds) and all(s % 100 == 0 for s, _ in bounds)
    assert [b[1] for b in bounds[:-1]] == [b[0] for b in bounds[1:]] and bounds[-1][1] == 10_000
    assert chunk_bounds(wave[:500], 4_000, 1_000, 100) == [(0, 500)]


def test_transcribe_dir_writes_a_line_per_file(audio_dir: Path, tmp_path: Path) -> None:
    tr = Recognizer(_tiny(), decode="greedy", chunk_s=2.0)
    out = tmp_path / "transcripts.jsonl"
    counts = transcribe_to_jsonl(tr, audio_dir, out)
    rows = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert counts == {"files": 9, "transcribed": 5, "errors": 4}
    for bad in ("empty.wav", "corrupt.wav", "notes.txt", "zero_length.wav"):
        assert "error" in rows[bad] and bad in rows[bad]["error"]
    assert rows["silence.wav"]["text"] == ""
    assert rows["long.wav"]["duration"] == pytest.approx(7.5)
    assert all(
        isinstance(rows[n]["text"], str) for n in ("speech.wav", "long.wav", "stereo44k.flac", "clip.ogg")
    )


def test_chunked_equals_whole_for_a_short_file(audio_dir: Path) -> None:
    m = _tiny()
    from lstm_seq.audio.data.io import load_audio

    wave = load_audio(audio_dir / "speech.wav")
    whole = Recognizer(m, decode="greedy", chunk_s=20.0).transcribe(wave, sample_rate=16000)[0].text
    assert (
        whole
        and whole == Recognizer(m, decode="greedy", chunk_s=1.6).transcribe(wave, sample_rate=16000)[0].text
    )


def test_checkpoint_roundtrip_and_wrong_pipeline(tmp_path: Path) -> None:
    m = _tiny()
    m.decoding = DecodingSetup.from_texts(["turn left"])
    ckpt = {"state_dict": m.state_dict(), "hyper_parameters": dict(m.hparams)}
    m.on_save_checkpoint(ckpt)
    torch.save(ckpt, tmp_path / "asr.ckpt")
    back = ASRModule.load(tmp_path / "asr.ckpt")
    assert back.feature_cfg == m.feature_cfg and back.vocab == m.vocab and back.decoding == m.decoding
    wave = torch.randn(1, 16000)
    torch.testing.assert_close(back(wave, torch.tensor([16000]))[0], m.eval()(wave, torch.tensor([16000]))[0])
    torch.save({"state_dict": {}, "hyper_parameters": {"pipeline": "caption"}}, tmp_path / "cap.ckpt")
    with pytest.raises(CheckpointError, match="not a speech-recognition"):
        ASRModule.load(tmp_path / "cap.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        ASRModule.load(tmp_path / "junk.ckpt")
    with pytest.raises(CheckpointError, match="not found"):
        ASRModule.load(tmp_path / "nope.ckpt")
