"""The environment every test passes to a process it starts (a pipeline's command line, a fresh interpreter):
a few inherited variables, the repository on PYTHONPATH, one thread per process. Nothing else from the
caller's shell reaches it: no HYDRA_FULL_ERROR (it changes what a failing command prints), no LSTM_SEQ_*, no
PYTHON* switches, no OMP/CUDA settings of the caller."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

INHERITED = ("PATH", "HOME", "USER", "TMPDIR", "LANG", "LC_ALL", "LC_CTYPE")


def clean_env(*, pythonpath: tuple[Path, ...] = (), **extra: str) -> dict[str, str]:
    """The controlled environment. ``pythonpath``: folders put before the repository on PYTHONPATH;
    ``extra``: variables set on top (e.g. ``TRITON_INTERPRET="1"``)."""
    base = {k: os.environ[k] for k in INHERITED if k in os.environ}
    path = os.pathsep.join([*(str(p) for p in pythonpath), str(ROOT)])
    return {**base, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}
