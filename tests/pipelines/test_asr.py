"""The speech pipeline end to end, as users run it: smoke training, test, transcribe, prepare, errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from tests._env import clean_env
from tests.audio.conftest import speechlike

ROOT = Path(__file__).resolve().parents[2]


def cli_env(tmp: Path) -> dict[str, str]:
    """The environment the CLI runs in: only what it needs (no HYDRA_FULL_ERROR etc. from the caller's
    shell), and flashlight-text hidden behind a package of that name that cannot be imported, so every
    pipeline test here shows that training, tuning, test and transcribe need no flashlight."""
    hide = tmp / "no_flashlight" / "flashlight"
    hide.mkdir(parents=True, exist_ok=True)
    (hide / "__init__.py").write_text("raise ImportError('flashlight-text is hidden by the tests')\n")
    return clean_env(pythonpath=(hide.parent,))


def run_asr(
    tmp: Path, *overrides: str, task: str = "", check: bool = True
) -> tuple[subprocess.CompletedProcess[str], Path | None]:
    """Run ``python -m pipelines.asr`` (training; ``task`` e.g. "test": ``python -m pipelines.asr.test``) with
    its data and outputs under ``tmp``; returns the process and the run directory it created."""
    out = tmp / "outputs"
    before = set(out.rglob("metrics.json")) if out.exists() else set()
    module = f"pipelines.asr.{task}" if task else "pipelines.asr"
    train = [] if task else ["trainer.enable_progress_bar=false"]
    cmd = [sys.executable, "-m", module, f"paths.data_dir={tmp / 'data'}", f"paths.output_dir={out}", *train]
    cmd += overrides
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=cli_env(tmp), timeout=3600)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{module} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    new = sorted(set(out.rglob("metrics.json")) - before) if out.exists() else []
    return proc, (new[-1].parent if new else None)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One ``debug=smoke`` run shared by the tests below: (tmp root, run dir)."""
    tmp = tmp_path_factory.mktemp("asr")
    proc, run = run_asr(tmp, "debug=smoke")
    assert run is not None and "ASR done" in proc.stdout
    return tmp, run


def test_smoke_trains_tests_and_writes_everything(smoke: tuple[Path, Path]) -> None:
    _, run = smoke
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("test/wer", "test/cer", "test/wer_greedy", "test/cer_greedy", "test/wer_beam", "test/loss"):
        assert key in metrics and math.isfinite(metrics[key]), key
    assert metrics["test/utterances"] > 0 and metrics["data/train/kept"] > 0
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert any(p.name.startswith("best-") for p in (run / "checkpoints").iterdir())
    assert len(list((run / "plots").glob("*.png"))) >= 1
    rows = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == metrics["test/utterances"] and {"path", "ref", "greedy", "beam"} <= set(rows[0])
    header = (run / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert "train/loss" in header and "val/wer" in header and "val/cer" in header
    assert any((run / "tensorboard").rglob("events.out.tfevents*"))
    torch = __import__("torch")
    ckpt = torch.load(run / "checkpoints" / "final.ckpt", weights_only=True)
    hp = ckpt["hyper_parameters"]
    assert hp["pipeline"] == "asr" and hp["vocab"]["symbols"] and hp["features"]["n_mfcc"] > 0
    assert ckpt["asr_decoding"]["sentences"]  # the LM's sentence counts travel with the model
    assert ckpt["asr_decoding"]["lm_weight"] is not None  # and the weights tuned after training
    # the LM weight and word score were chosen on validation and stored in the final checkpoint only: the best
    # one keeps training's weights and is otherwise the same file; last.ckpt stays training's (for a resume)
    best = next(p for p in (run / "checkpoints").iterdir() if p.name.startswith("best-"))
    best_ckpt = torch.load(best, weights_only=True)
    assert best_ckpt["asr_decoding"]["lm_weight"] is None
    assert best_ckpt["asr_decoding"] == {**ckpt["asr_decoding"], "lm_weight": None, "word_score": None}
    torch.testing.assert_close(best_ckpt["state_dict"], ckpt["state_dict"])
    assert (
        torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["asr_decoding"]["lm_weight"] is None
    )
    tuning = json.loads((run / "beam_tuning.json").read_text())
    assert len(tuning["table"]) == 6 * 4 and tuning["chosen"] == {
        k: ckpt["asr_decoding"][k] for k in ("lm_weight", "word_score")
    }
    best_row = min(tuning["table"], key=lambda r: r["wer"])
    assert metrics["val/wer_beam_tuned"] == best_row["wer"]
    assert metrics["decode/lm_weight"] == tuning["chosen"]["lm_weight"]
    assert not (run / "lm").exists()  # the torch backend reads the LM from memory: no ARPA file written


def test_test_decodes_with_the_tuned_weights(smoke: tuple[Path, Path]) -> None:
    tmp, run = smoke
    final = run / "checkpoints" / "final.ckpt"
    tuned = __import__("torch").load(final, weights_only=True)["asr_decoding"]
    _, out = run_asr(tmp, "debug=smoke", f"ckpt={final}", task="test")
    assert out is not None
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["decode/lm_weight"], metrics["decode/word_score"]) == (
        tuned["lm_weight"],
        tuned["word_score"],
    )
    assert (out / "predictions.jsonl").read_text() == (
        run / "predictions.jsonl"
    ).read_text()  # as the run tested
    _, out = run_asr(tmp, "debug=smoke", f"ckpt={final}", "decode.lm_weight=0.25", task="test")
    assert out is not None and json.loads((out / "metrics.json").read_text())["decode/lm_weight"] == 0.25


def test_flashlight_backend_is_optional_and_says_how_to_install_it(smoke: tuple[Path, Path]) -> None:
    """The smoke run above tuned and tested with beam search + LM while flashlight was hidden; asking for the
    flashlight backend in that environment fails with the install line (and shows the package is hidden)."""
    tmp, run = smoke
    proc, _ = run_asr(
        tmp, "debug=smoke", f"ckpt={run / 'checkpoints' / 'last.ckpt'}", "decode.backend=flashlight",
        task="test", check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert (
        "decode.backend=flashlight needs flashlight-text (pip install -e '.[flashlight]')"
        in proc.stdout + proc.stderr
    )


def test_test_evaluates_a_checkpoint(smoke: tuple[Path, Path]) -> None:
    tmp, run = smoke
    proc, out = run_asr(
        tmp, "debug=smoke", f"ckpt={run / 'checkpoints' / 'last.ckpt'}", "decode=greedy", task="test"
    )
    assert out is not None and "test: WER" in proc.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["test/wer"] and metrics["test/wer"] == metrics["test/wer_greedy"]


def test_transcribe_a_folder_with_bad_files(smoke: tuple[Path, Path], tmp_path: Path) -> None:
    tmp, run = smoke
    audio = tmp_path / "in"
    (audio / "nested").mkdir(parents=True)
    sf.write(audio / "a.wav", speechlike(1.0), 16000)
    sf.write(audio / "nested" / "b.flac", speechlike(3.0, 8000), 8000)
    (audio / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
    proc, out = run_asr(
        tmp,
        f"ckpt={run / 'checkpoints' / 'last.ckpt'}",
        f"audio_dir={audio}",
        "chunk_s=1.0",
        task="transcribe",
    )
    assert out is not None
    rows = {
        Path(r["path"]).name: r for r in map(json.loads, (out / "transcripts.jsonl").read_text().splitlines())
    }
    assert set(rows) == {"a.wav", "b.flac", "broken.wav"}
    assert "error" in rows["broken.wav"] and "text" in rows["a.wav"]
    assert rows["b.flac"]["duration"] == pytest.approx(3.0, abs=1e-3)  # chunked (chunk_s=1.0)
    assert "transcribed 2/3 files (1 errors)" in proc.stdout


def test_prepare_librispeech_then_manifests_load(tmp_path: Path) -> None:
    d = tmp_path / "LS" / "dev-clean" / "84" / "121"
    d.mkdir(parents=True)
    sf.write(d / "84-121-0000.flac", speechlike(0.5), 16000, format="FLAC")
    (d / "84-121.trans.txt").write_text("84-121-0000 HELLO THERE\n")
    _proc, out = run_asr(tmp_path, "data=librispeech", f"data.root={tmp_path / 'LS'}", task="prepare")
    manifest = tmp_path / "data" / "librispeech" / "dev-clean.jsonl"
    assert manifest.is_file() and json.loads(manifest.read_text())["text"] == "HELLO THERE"
    assert out is not None and json.loads((out / "metrics.json").read_text())["prepare/dev-clean"] == 1


def test_wrong_checkpoint_fails_clearly(tmp_path: Path) -> None:
    import torch

    torch.save({"state_dict": {}, "hyper_parameters": {"pipeline": "caption"}}, tmp_path / "cap.ckpt")
    proc, _ = run_asr(
        tmp_path, f"ckpt={tmp_path / 'cap.ckpt'}", f"audio_dir={tmp_path}", task="transcribe", check=False
    )
    assert proc.returncode != 0 and "is not a speech-recognition (asr) checkpoint" in proc.stderr


def test_missing_arguments_fail_clearly(tmp_path: Path) -> None:
    proc, _ = run_asr(tmp_path, task="transcribe", check=False)
    assert proc.returncode != 0 and "missing ckpt=PATH and audio_dir=DIR" in proc.stderr
    proc, _ = run_asr(tmp_path, "data=speech_manifest", check=False)
    assert proc.returncode != 0 and "data.train_manifest is not set" in proc.stderr


@pytest.mark.slow
def test_default_run_reaches_the_goal(tmp_path: Path) -> None:
    """The acceptance run: defaults, fresh corpus, unseen test speakers (minutes on a 2-core CPU)."""
    _proc, run = run_asr(tmp_path, "logger=none", "plot_utterances=0")
    assert run is not None
    m = json.loads((run / "metrics.json").read_text())
    assert m["test/wer"] <= 0.10 and m["test/cer"] <= 0.04, m
    assert m["test/wer_beam"] < m["test/wer_greedy"]  # the LM helps


def test_smoke_in_bf16_mixed_precision(smoke: tuple[Path, Path]) -> None:
    """What ``trainer.accelerator=gpu`` selects (bf16-mixed autocast), run on the CPU: CTC stays float32,
    the losses and rates are finite and the checkpoint keeps float32 weights."""
    torch = pytest.importorskip("torch")
    proc, run = run_asr(smoke[0], "debug=smoke", "trainer.precision=bf16-mixed", "plot_utterances=0")
    assert run is not None and "ASR done" in proc.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert all(math.isfinite(metrics[k]) for k in ("test/loss", "test/wer", "test/cer", "val/wer_beam_tuned"))
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(t.dtype == torch.float32 for t in state.values() if t.is_floating_point())


def test_export_writes_onnx_files_with_metadata(smoke: tuple[Path, Path]) -> None:
    pytest.importorskip("onnxscript")
    tmp, run = smoke
    proc, out = run_asr(tmp, f"ckpt={run / 'checkpoints' / 'last.ckpt'}", task="export")
    assert out is not None and json.loads((out / "metrics.json").read_text())["export/files"] == 2
    meta = json.loads((out / "export" / "metadata.json").read_text())
    assert (
        meta["vocab"] and sorted(p.name for p in (out / "export").glob("*.onnx")) and "wrote" in proc.stdout
    )
