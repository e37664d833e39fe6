"""Multirun sweeps: every job runs even when one fails, each in outputs/multirun/DATE/TIME/N, and the sweep
directory ends with sweep_summary.csv/.md sorted by the objective; plus the experiment presets on tiny data."""

from __future__ import annotations

import csv
import errno
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from pipelines._hydra import ConfigError
from pipelines._sweep import SUMMARY_CSV, SUMMARY_MD, pipeline_job, write_summary
from tests._env import clean_env

ROOT = Path(__file__).resolve().parents[2]


def _run(
    pipeline: str, *args: str, tmp: Path, timeout: int = 600, from_tmp: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run a pipeline; outputs under ``tmp/outputs``: set explicitly, or (``from_tmp``) by launching in
    ``tmp`` with the default ``paths.output_dir`` (the launch directory's outputs/)."""
    env = clean_env()
    out = [] if from_tmp else [f"paths.output_dir={tmp / 'outputs'}"]
    cmd = [sys.executable, "-m", f"pipelines.{pipeline}", *args, *out,
           f"paths.data_dir={tmp / 'data'}", "logger=none", "trainer.enable_progress_bar=false"]  # fmt: skip
    return subprocess.run(
        cmd, cwd=tmp if from_tmp else ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _summary(sweep: Path) -> list[dict[str, str]]:
    with (sweep / SUMMARY_CSV).open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_caption_multirun_survives_a_failing_job_and_summarises(tmp_path: Path) -> None:
    # launched from tmp_path with the default output_dir: the sweep dir must resolve before Hydra's own
    # config exists (a plain `python -m pipelines.caption -m …` in a checkout)
    proc = _run("caption", "-m", "debug=smoke", "decoder.hidden_size=-1,16", tmp=tmp_path, from_tmp=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sweeps = list((tmp_path / "outputs" / "multirun").glob("*/*"))
    assert len(sweeps) == 1
    sweep = sweeps[0]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}/\d{2}-\d{2}-\d{2}-\d{6}", f"{sweep.parent.name}/{sweep.name}")
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]

    failed = json.loads((sweep / "0" / "job_status.json").read_text())
    assert failed["status"] == "failed" and "decoder.hidden_size=-1 must be > 0" in failed["error"]
    assert not (sweep / "0" / "metrics.json").exists()  # it failed before any work
    done = json.loads((sweep / "1" / "job_status.json").read_text())
    metrics = json.loads((sweep / "1" / "metrics.json").read_text())
    assert done["status"] == "completed" and "decoder.hidden_size=16" in done["overrides"]
    assert done["objective"] == pytest.approx(metrics["test/cider"])
    assert (sweep / "1" / "checkpoints" / "last.ckpt").is_file()

    rows = _summary(sweep)
    assert [(r["job"], r["status"]) for r in rows] == [("1", "completed"), ("0", "failed")]
    assert float(rows[0]["test/cider"]) == pytest.approx(metrics["test/cider"], abs=1e-4)
    assert float(rows[0]["test/bleu4"]) == pytest.approx(metrics["test/bleu4"])
    assert rows[1]["test/cider"] == "" and "must be > 0" in rows[1]["error"]
    assert "decoder.hidden_size=-1" in rows[1]["overrides"]
    md = (sweep / SUMMARY_MD).read_text()
    assert "| 1 | 1 | decoder.hidden_size=16 | completed |" in md
    assert "| 2 | 0 | decoder.hidden_size=-1 | failed |" in md
    assert "| 2 | 0 | decoder.hidden_size=-1 | failed |" in proc.stdout  # the table is printed


def _job(root: Path, num: int, overrides: list[str], status: dict | None) -> None:
    job = root / str(num)
    (job / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), job / ".hydra" / "overrides.yaml")
    if status is not None:
        (job / "job_status.json").write_text(json.dumps({"overrides": overrides, **status}))


@pytest.mark.parametrize(
    ("direction", "order"), [("minimize", ["2", "0", "1", "3"]), ("maximize", ["0", "2", "1", "3"])]
)
def test_summary_sorts_by_the_objective_failed_and_lost_jobs_last(
    tmp_path: Path, direction: str, order: list[str]
) -> None:
    common = "seed=1"
    _job(
        tmp_path,
        0,
        [common, "optim.lr=0.1"],
        {"status": "completed", "objective": 0.5, "metrics": {"test/wer": 0.5}},
    )
    _job(tmp_path, 1, [common, "optim.lr=0.2"], None)  # killed: no status file
    _job(
        tmp_path,
        2,
        [common, "optim.lr=0.3"],
        {"status": "completed", "objective": 0.25, "metrics": {"test/wer": 0.25}},
    )
    _job(
        tmp_path,
        3,
        [common, "optim.lr=-1"],
        {"status": "failed", "error": "ConfigError: optim.lr=-1 must be > 0"},
    )
    rows = write_summary(tmp_path, "test/wer", direction)
    assert [r["job"] for r in rows] == order
    table = _summary(tmp_path)
    assert [r["job"] for r in table] == order
    assert {r["job"]: r["status"] for r in table} == {
        "0": "completed",
        "1": "unknown",
        "2": "completed",
        "3": "failed",
    }
    md = (tmp_path / SUMMARY_MD).read_text()
    assert "Common overrides: `seed=1`" in md and "| optim.lr=-1 | failed |" in md
    assert "sorted by test/wer" in md


def test_single_run_failures_propagate() -> None:
    def broken(cfg: object) -> dict[str, float]:
        raise RuntimeError("boom")

    cfg = OmegaConf.create({"objective": {"metric": "test/wer"}})
    with pytest.raises(RuntimeError, match="boom"):
        pipeline_job(broken)(cfg)

    def bad_config(cfg: object) -> dict[str, float]:
        raise ConfigError("data.x is wrong")

    with pytest.raises(SystemExit, match=r"^config error: data.x is wrong$"):
        pipeline_job(bad_config)(cfg)

    def full_disk(cfg: object) -> dict[str, float]:  # e.g. a transcript written by the library
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/run/transcripts.jsonl")

    with pytest.raises(
        SystemExit, match=r"^output error: .*No space left on device: '/run/transcripts.jsonl'$"
    ):
        pipeline_job(full_disk)(cfg)
    assert pipeline_job(lambda c: {"test/wer": 0.25})(cfg) == 0.25
    assert math.isnan(pipeline_job(lambda c: {"test/cer": 0.25})(cfg))  # no objective in the metrics
    assert math.isnan(pipeline_job(lambda c: {"test/wer": math.nan})(cfg))


def test_caption_experiment_runs_on_tiny_data(tmp_path: Path) -> None:
    proc = _run(
        "caption", "+experiment=caption_coco", "debug=smoke", "data=scenes", tmp=tmp_path, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (metrics_file,) = (tmp_path / "outputs").rglob("metrics.json")
    run = metrics_file.parent.relative_to(tmp_path / "outputs").as_posix()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}/\d{2}-\d{2}-\d{2}-\d{6}", run), run  # outputs/DATE/TIME-µs
    cfg = OmegaConf.load(metrics_file.parent / ".hydra" / "config.yaml")
    assert cfg.encoder.name == "resnet50" and cfg.encoder.frozen
    assert "test/cider" in json.loads(metrics_file.read_text())


@pytest.mark.slow
def test_asr_experiment_runs_on_tiny_data(tmp_path: Path) -> None:
    proc = _run("asr", "+experiment=asr_librispeech", "debug=smoke", "data=speech_synth", "plot_utterances=0",
                tmp=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ASR done" in proc.stdout


@pytest.mark.slow
def test_the_issue_sweep_command_on_tiny_data(tmp_path: Path) -> None:
    """`python -m pipelines.asr -m model.hidden_size=64,128 optim.lr=1e-3,3e-3` (+ debug=smoke): four jobs."""
    proc = _run("asr", "-m", "model.hidden_size=64,128", "optim.lr=1e-3,3e-3", "debug=smoke", "plot_utterances=0",
                tmp=tmp_path, timeout=1800)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "multirun").glob("*/*")
    rows = _summary(sweep)
    assert len(rows) == 4 and all(r["status"] == "completed" for r in rows)
    wers = [float(r["test/wer"]) for r in rows]
    assert wers == sorted(wers)
