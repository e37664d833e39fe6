"""Running a pipeline in a subprocess with a controlled environment, killing one dead at a chosen moment, and
reading what it left behind."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from tests._env import clean_env
from tests.training._kill_switch import KILL_ENV

ROOT = Path(__file__).resolve().parents[2]

# LastCheckpoint's log line for every write of last.ckpt
_WROTE = re.compile(
    r"wrote (?P<path>\S.*last\.ckpt) \(epoch (?P<epoch>\d+), step (?P<step>\d+), (?P<moment>[^)]+)\)"
)


def env(**extra: str) -> dict[str, str]:
    """A clean environment (:func:`tests._env.clean_env`: a few inherited variables, the repository on
    PYTHONPATH, one thread per process), and no GPU."""
    return clean_env(CUDA_VISIBLE_DEVICES="", **extra)


def run(
    pipeline: str,
    *overrides: str,
    timeout: int = 600,
    check: bool = True,
    kill_at: str | None = None,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    """``python -m pipelines.<pipeline> *overrides``. ``kill_at`` (``EVENT:N``, see
    :mod:`tests.training._kill_switch`) runs it through that module instead, which makes the process SIGKILL
    itself at that moment; ``check`` then requires that it died so, else that it exited 0."""
    cmd = [sys.executable, "-m", f"pipelines.{pipeline}", *overrides]
    extra: dict[str, str] = {}
    if kill_at:  # python -m tests.training._kill_switch pipelines.<pipeline> *overrides
        cmd = [sys.executable, "-m", "tests.training._kill_switch", *cmd[2:]]
        extra[KILL_ENV] = kill_at
    proc = subprocess.run(cmd, cwd=cwd, env=env(**extra), capture_output=True, text=True, timeout=timeout)
    if check:
        want = -signal.SIGKILL if kill_at else 0
        assert proc.returncode == want, (
            f"{pipeline} {' '.join(overrides)} exited {proc.returncode}, expected {want}:\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def saves(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """Every write of ``last.ckpt`` the run logged, in order: ``epoch``, ``step``, ``moment``."""
    out = proc.stdout + proc.stderr
    return [
        {"epoch": int(m["epoch"]), "step": int(m["step"]), "moment": m["moment"]}
        for m in _WROTE.finditer(out)
    ]


def printed_command(proc: subprocess.CompletedProcess[str], task: str) -> list[str]:
    """The ``python -m pipelines.<pipeline>.<task> …`` line the run printed, split as a shell would."""
    lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip().startswith("python -m pipelines.")]
    found = [shlex.split(ln) for ln in lines if shlex.split(ln)[2].endswith(f".{task}")]
    assert len(found) == 1, f"no single pipelines.….{task} command in:\n{proc.stdout[-3000:]}"
    return found[0]


def printed_ckpt(proc: subprocess.CompletedProcess[str]) -> Path:
    """The checkpoint the printed ``pipelines.<pipeline>.test`` command evaluates (the run's best checkpoint)."""
    arg = next(a for a in printed_command(proc, "test") if a.startswith("ckpt="))
    value = arg.removeprefix("ckpt=")
    return Path(value[1:-1] if value[:1] == "'" else value)


def loader_position(ckpt: Path) -> dict[str, Any]:
    c = torch.load(ckpt, map_location="cpu", weights_only=True)
    state = c["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    return {"global_step": c["global_step"], "epoch": state["epoch"], "batches_done": state["batches_done"]}


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


def metrics(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "metrics.json").read_text())
