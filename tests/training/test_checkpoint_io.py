"""Checkpoint files: atomic writes, code-free loading, clear errors naming the file."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from lstm_seq.audio.decoding.setup import DecodingSetup
from lstm_seq.audio.module import ASRModule
from lstm_seq.training.checkpoint_io import (
    AtomicCheckpointIO,
    CheckpointError,
    load_checkpoint_file,
    save_atomic,
)
from lstm_seq.vision.module import CaptionModule

MARKER = "lstm_seq_code_ran"


class _Unpicklable:
    def __reduce__(self) -> tuple[object, ...]:
        raise RuntimeError("disk full (simulated)")


class _Payload:
    """Pickles to a call of os.mkdir: loading it with weights_only=False would create a directory."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:
        return (os.mkdir, (self.path,))


def test_failed_save_keeps_the_previous_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)
    with pytest.raises(RuntimeError, match="disk full"):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "x": _Unpicklable()}, path)
    assert torch.equal(io.load_checkpoint(path)["state_dict"]["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_truncated_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    save_atomic({"state_dict": {"w": torch.randn(1000)}}, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=rf"{path}.*truncated or not a PyTorch file"):
        load_checkpoint_file(path)


def test_a_checkpoint_cannot_run_code(tmp_path: Path) -> None:
    target = tmp_path / MARKER
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "x": _Payload(str(target))}, path)
    with pytest.raises(CheckpointError, match=rf"{path}.*cannot run code"):
        load_checkpoint_file(path)
    assert not target.exists()
    with pytest.raises(CheckpointError, match="not found"):
        AtomicCheckpointIO().load_checkpoint(tmp_path / "missing.ckpt")


def test_foreign_files_are_refused_clearly(tmp_path: Path) -> None:
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.ones(2)}, plain)
    with pytest.raises(CheckpointError, match=rf"{plain} is not a Lightning checkpoint"):
        load_checkpoint_file(plain)
    pickled = tmp_path / "data.pkl"
    pickled.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError, match=str(pickled)):
        load_checkpoint_file(pickled)
    text = tmp_path / "notes.ckpt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match=rf"{text} is not a readable PyTorch checkpoint"):
        ASRModule.load(text)


def test_asr_checkpoint_round_trip_through_the_safe_loader(tmp_path: Path) -> None:
    module = ASRModule(model={"hidden_size": 16, "num_layers": 1})
    path = tmp_path / "asr.ckpt"
    ckpt = {
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
        "asr_decoding": DecodingSetup.from_texts(["hi there", "hi"]).to_dict(),
    }
    save_atomic(ckpt, path)
    back = ASRModule.load(path)
    assert back.decoding.sentences == {"hi": 1, "hi there": 1} and back.decoding.words == ("hi", "there")
    pairs = zip(module.state_dict().values(), back.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    with pytest.raises(CheckpointError, match=rf"{path} is not an image-captioning checkpoint"):
        CaptionModule.load(path)
