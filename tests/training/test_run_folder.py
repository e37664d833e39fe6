"""One run per run folder (lstm_seq.training.run_folder): a live second run is refused, the lock of a killed
run is taken over, a finished run's folder is not written over except by a resume from a checkpoint in it;
and the pipelines refuse such a folder before doing anything."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lstm_seq.training import run_folder
from lstm_seq.training.run_folder import LOCK_FILE, SUPERSEDED, RunFolderError, claim
from pipelines._hydra import claim_run_folder
from tests.training._pipeline import ROOT, env

_HOLDER = (  # the module alone (no Lightning import): the process is up in a blink
    "import importlib.util, sys, time\n"
    "spec = importlib.util.spec_from_file_location('run_folder', sys.argv[2])\n"
    "mod = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(mod)\n"
    "mod.claim(sys.argv[1])\n"
    "print('claimed', flush=True)\n"
    "time.sleep(120)\n"
)


@pytest.fixture
def holder(tmp_path: Path):
    """Another process that claims ``tmp_path / 'run'`` and keeps it until killed."""
    folder = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(folder), run_folder.__file__],
        cwd=ROOT,
        env=env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "claimed"
    yield folder, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_a_live_run_owns_its_folder(holder: tuple[Path, subprocess.Popen[str]]) -> None:
    folder, proc = holder
    with pytest.raises(RunFolderError) as err:
        claim(folder)
    message = str(err.value)
    assert str(folder) in message and f"pid {proc.pid}" in message and socket.gethostname() in message
    owner = json.loads((folder / LOCK_FILE).read_text())
    assert owner["pid"] == proc.pid  # the refused run left the owner's lock as it was


def test_the_lock_of_a_killed_run_is_taken_over(holder: tuple[Path, subprocess.Popen[str]]) -> None:
    folder, proc = holder
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert json.loads((folder / LOCK_FILE).read_text())["pid"] == proc.pid  # stale: its owner is dead
    run = claim(folder)
    assert json.loads((folder / LOCK_FILE).read_text())["pid"] == os.getpid()
    run.release()
    assert not (folder / LOCK_FILE).exists()


def _finished_run(folder: Path) -> None:
    (folder / ".hydra").mkdir(parents=True)
    (folder / "asr.log").write_text("")
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    (folder / "metrics.json").write_text('{"test/wer_beam": 0.5}\n')
    (folder / "beam_tuning.json").write_text("{}\n")


def test_a_finished_runs_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    _finished_run(folder)
    for resume in (None, tmp_path / "elsewhere" / "last.ckpt"):
        with pytest.raises(RunFolderError, match="already holds another run's files") as err:
            claim(folder, resume)
        assert "beam_tuning.json" in str(err.value) and "metrics.json" in str(err.value)
    assert (folder / "metrics.json").read_text() == '{"test/wer_beam": 0.5}\n'
    assert not (folder / LOCK_FILE).exists()
    claim(tmp_path / "fresh").release()  # a new folder, or one with Hydra's own files only, is fine
    (tmp_path / "hydra_only" / ".hydra").mkdir(parents=True)
    claim(tmp_path / "hydra_only").release()


def test_a_resume_in_place_supersedes_the_earlier_records(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    _finished_run(folder)
    run = claim(folder, folder / "checkpoints" / "last.ckpt")
    run.release()
    assert not (folder / "metrics.json").exists() and not (folder / "beam_tuning.json").exists()
    (moved,) = (folder / SUPERSEDED).iterdir()
    assert json.loads((moved / "metrics.json").read_text()) == {"test/wer_beam": 0.5}
    assert (folder / "checkpoints" / "last.ckpt").read_bytes() == b"weights"


def test_other_data_parallel_processes_share_rank_zeros_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "run"
    _finished_run(folder)
    monkeypatch.setenv("LOCAL_RANK", "1")
    claim(folder).release()  # neither locked nor refused: rank 0 claimed it
    assert not (folder / LOCK_FILE).exists()


def _pipeline(folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pipelines.asr", "debug=smoke", f"hydra.run.dir={folder}", *extra]
    return subprocess.run(cmd, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)


def test_the_pipeline_refuses_a_live_runs_folder(holder: tuple[Path, subprocess.Popen[str]]) -> None:
    folder, proc = holder
    out = _pipeline(folder, f"paths.data_dir={folder.parent / 'data'}")
    assert out.returncode != 0
    assert f"run folder error: another run is writing into the run folder {folder}" in out.stderr
    assert f"pid {proc.pid}" in out.stderr
    assert not (folder / "job_status.json").exists()  # nothing of the refused run in there


def test_a_pipeline_run_into_a_finished_runs_folder(tmp_path: Path) -> None:
    """How ``python -m pipelines.asr hydra.run.dir=<finished run> …`` claims its folder: a new training run
    (``decode=greedy`` over a beam run) or a test (``pipelines.asr.test``) is refused; a resume from a checkpoint
    in it is not."""
    folder = tmp_path / "run"
    _finished_run(folder)
    last = str(folder / "checkpoints" / "last.ckpt")
    for cfg, training in (({"ckpt": None}, True), ({"ckpt": last}, False)):
        with pytest.raises(RunFolderError, match=f"the run folder {folder} already holds"):
            claim_run_folder(OmegaConf.create(cfg), folder, training)
    assert json.loads((folder / "metrics.json").read_text()) == {"test/wer_beam": 0.5}
    claim_run_folder(OmegaConf.create({"ckpt": last}), folder, training=True).release()
    assert not (folder / "metrics.json").exists()  # superseded: the resumed run writes its own
