"""Test-time inputs are checked before the first training step, and ``decode.lm_path=`` replaces a
checkpoint's LM in ``pipelines.asr.test`` / ``pipelines.asr.transcribe``: an empty or malformed test manifest and an ARPA file
with one bad 2-gram line used to fail only after the whole training and tuning, and a checkpoint that
carried the bad LM could then only decode greedily."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import soundfile as sf
import torch

from lstm_seq.audio import recipe
from lstm_seq.audio.data.datamodule import ASRDataModule
from lstm_seq.audio.data.manifest import ManifestError
from lstm_seq.audio.decoding.lm import estimate_arpa
from lstm_seq.audio.decoding.setup import DecodingSetup, build
from lstm_seq.audio.module import ASRModule
from lstm_seq.audio.vocab import CharVocab
from tests._env import clean_env
from tests.audio.conftest import speechlike

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["go left", "go right", "stop"] * 4


def _good_arpa(path: Path) -> Path:
    path.write_text(estimate_arpa(TEXTS, order=2))
    return path


def _bad_arpa(path: Path) -> tuple[Path, int]:
    """An ARPA whose unigrams are fine and whose one 2-gram line is not; returns the file and that line."""
    lines = estimate_arpa(TEXTS, order=2).splitlines()
    at = lines.index("\\2-grams:") + 2
    lines[at] = "oops go left"  # a log-prob that is no number
    path.write_text("\n".join(lines) + "\n")
    return path, at + 1


def _manifests(tmp: Path, test_rows: str | None = None) -> dict[str, Path]:
    wav = tmp / "a.wav"
    sf.write(wav, speechlike(1.0), 16000)
    row = json.dumps({"audio_filepath": str(wav), "text": "go left", "duration": 1.0}) + "\n"
    out = {}
    for split in ("train", "val", "test"):
        out[split] = tmp / f"{split}.jsonl"
        out[split].write_text(row * 3 if split != "test" or test_rows is None else test_rows)
    return out


def test_the_whole_arpa_file_is_parsed_when_the_setup_is_built(tmp_path: Path) -> None:
    path, line = _bad_arpa(tmp_path / "bad.arpa")
    with pytest.raises(ValueError, match=rf"bad\.arpa:{line}: not an ARPA 2-gram line"):
        build({"lm_path": str(path)}, [], CharVocab())


@pytest.mark.parametrize(
    ("rows", "error"),
    [
        ("", r"test\.jsonl: no usable utterances"),
        ('{"audio_filepath": "a.wav"\n', r"test\.jsonl:1: not valid JSON"),
    ],
)
def test_every_manifest_is_read_before_training(tmp_path: Path, rows: str, error: str) -> None:
    dm = ASRDataModule({k: str(v) for k, v in _manifests(tmp_path, rows).items()}, CharVocab())
    with pytest.raises((ValueError, ManifestError), match=error):
        recipe.check_inputs(dm)
    (tmp_path / "ok").mkdir()
    good = ASRDataModule({k: str(v) for k, v in _manifests(tmp_path / "ok").items()}, CharVocab())
    assert recipe.check_inputs(good) == {"train": 3, "val": 3, "test": 3}


def test_lm_path_replaces_the_checkpoints_lm(tmp_path: Path) -> None:
    module = ASRModule(model={"hidden_size": 8, "num_layers": 1})
    bad, _ = _bad_arpa(tmp_path / "bad.arpa")
    text = bad.read_text()
    module.decoding = DecodingSetup(
        arpa=text, arpa_path=str(bad), arpa_sha256="x", words=("go",), lm_weight=0.3
    )
    good = _good_arpa(tmp_path / "good.arpa")
    recipe.use_lm(module, {"lm_path": str(good)})
    assert module.decoding.arpa_path == str(good) and module.decoding.lm_weight is None  # not tuned for it
    assert set(module.decoding.words) == {"go", "left", "right", "stop"}
    module.decoding = replace(module.decoding, lm_weight=0.7)
    recipe.use_lm(module, {"lm_path": str(good)})  # the very file it was tuned with: the weights stay
    assert module.decoding.lm_weight == 0.7


def _cli(tmp: Path, *overrides: str, task: str = "") -> subprocess.CompletedProcess[str]:
    """``python -m pipelines.asr`` (training, without loggers) or, given ``task``, ``pipelines.asr.<task>``."""
    module = [f"pipelines.asr.{task}"] if task else ["pipelines.asr", "logger=none"]
    cmd = [sys.executable, "-m", *module, f"paths.data_dir={tmp / 'data'}", *overrides]
    return subprocess.run(cmd, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=600)


def test_an_empty_test_manifest_stops_the_run_before_training(tmp_path: Path) -> None:
    """(The LM file is read, whole, at the same moment: test_the_whole_arpa_file_is_parsed_when_the_setup_is_built.)"""
    m = _manifests(tmp_path, test_rows="")
    out = tmp_path / "run"
    proc = _cli(
        tmp_path,
        "data=speech_manifest",
        *(f"data.{s}_manifest={p}" for s, p in m.items()),
        f"hydra.run.dir={out}",
    )
    assert proc.returncode != 0 and f"{m['test']}: no usable utterances" in proc.stderr
    assert not (out / "checkpoints").exists()


def test_transcribe_with_lm_path_instead_of_the_checkpoints_broken_lm(tmp_path: Path) -> None:
    module = ASRModule(model={"hidden_size": 8, "num_layers": 1})
    bad, _ = _bad_arpa(tmp_path / "bad.arpa")
    setup = DecodingSetup.from_texts(TEXTS)
    broken = replace(setup, sentences={}, arpa=bad.read_text(), arpa_path=str(bad))
    ckpt = tmp_path / "model.ckpt"
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict(),
                "asr_decoding": broken.to_dict()}, ckpt)  # fmt: skip
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / "a.wav", speechlike(1.0), 16000)
    # without decode.lm_path= this fails on the checkpoint's LM ("lm.arpa:LINE: not an ARPA 2-gram line")
    good = _good_arpa(tmp_path / "good.arpa")
    args = [
        f"ckpt={ckpt}",
        f"audio_dir={audio}",
        "decode=beam_lm",
        f"decode.lm_path={good}",
    ]
    proc = _cli(tmp_path, *args, f"hydra.run.dir={tmp_path / 'with'}", task="transcribe")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(r) for r in (tmp_path / "with" / "transcripts.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and "error" not in rows[0]
