"""Running a pipeline in a subprocess, and stopping one dead at a known step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from lstm_seq.training.resume import HALT_ENV

ROOT = Path(__file__).resolve().parents[2]


def env(**extra: str) -> dict[str, str]:
    # one thread per process: this suite shares a small CPU
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}


def run(
    pipeline: str, *overrides: str, timeout: int = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", f"pipelines.{pipeline}", *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"{pipeline} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def run_and_kill(pipeline: str, step: int, *overrides: str, timeout: float = 600) -> str:
    """Start a training run, wait until it has done ``step`` optimizer steps (it halts there, see
    ``lstm_seq.training.resume.HALT_ENV``) and SIGKILL it; returns its output."""
    cmd = [sys.executable, "-m", f"pipelines.{pipeline}", *overrides]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env(**{HALT_ENV: str(step)}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if f"halted after step {step}" in line:
                os.kill(proc.pid, signal.SIGKILL)
                break
        rc = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == -signal.SIGKILL, "".join(lines[-60:])
    return "".join(lines)


def loader_position(ckpt: Path) -> dict[str, Any]:
    c = torch.load(ckpt, map_location="cpu", weights_only=True)
    state = c["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    return {"global_step": c["global_step"], "epoch": state["epoch"], "batches_done": state["batches_done"]}


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


def metrics(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "metrics.json").read_text())
