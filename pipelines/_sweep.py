"""Jobs and sweeps: the wrapper every entry point's ``main`` goes through, and the summary written at the end of
a multirun.

:func:`pipeline_job` runs the pipeline (whose ``main`` first checks its config with
:func:`pipelines._config.validate`), records the outcome in ``<job dir>/job_status.json`` and returns the configured objective (``objective.metric`` of the
metrics the pipeline returned; NaN when the job failed or has no such metric) so that sweepers such as Optuna
can optimise it.

* First the job claims its run folder (:func:`pipelines._hydra.claim_run_folder`): a folder that a live run
  writes into, or that holds another run's files, is refused (``run folder error: …``, exit 1) and nothing,
  not even job_status.json, is written there.
* Training stopped by SIGTERM (:class:`~pipelines._hydra.TrainingInterrupted`) is recorded as ``interrupted``
  with the command that resumes it, and ends the process (a sweep too) with status 143.
* A single run (``python -m pipelines.asr …``) that fails exits non-zero: a config problem or an output that
  cannot be written as one line (``config error: …``, ``output error: …``), anything else with its traceback.
* In a grid sweep (``-m``, Hydra's basic sweeper) a failing job is logged with its traceback, recorded as failed
  and returns NaN: the basic sweeper would otherwise re-raise its exception once the batch is done, ending the
  sweep without a summary. Other sweepers (Optuna) get the exception (after it is recorded): they mark the
  trial failed themselves, and a NaN objective would crash Optuna 2.x.

:class:`SweepSummary` (a Hydra callback, configured in conf/hydra/default.yaml) then writes
``sweep_summary.csv`` and ``sweep_summary.md`` into the sweep directory — one row per job with its overrides,
status, metrics and error, best objective first — and prints the table.
"""

from __future__ import annotations

import csv
import errno
import functools
import json
import logging
import math
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from lstm_seq.outputs import OutputError, disk_refuses_writes, write_json_atomic
from lstm_seq.training.run_folder import RunFolderError
from pipelines._config import task_of
from pipelines._hydra import ConfigError, TrainingInterrupted, claim_run_folder, run_dir

log = logging.getLogger(__name__)

STATUS_FILE = "job_status.json"
SUMMARY_CSV = "sweep_summary.csv"
SUMMARY_MD = "sweep_summary.md"


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _basic_sweeper() -> bool:
    """True under Hydra's grid sweeper, which would end the whole sweep on a job's exception; other sweepers
    (Optuna) handle failed jobs themselves and need the exception (a NaN objective crashes Optuna 2.x)."""
    target = (
        OmegaConf.select(HydraConfig.get(), "sweeper._target_", default="")
        if HydraConfig.initialized()
        else ""
    )
    return not target or target.endswith(".BasicSweeper")


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def objective_value(cfg: DictConfig, metrics: Mapping[str, Any] | None) -> float | None:
    """``metrics[objective.metric]`` as a finite float, or None (missing, not a number, NaN)."""
    if not metrics:
        return None
    return _number(metrics.get(OmegaConf.select(cfg, "objective.metric", default="")))


def _record(out: Path, **status: Any) -> None:
    if not HydraConfig.initialized():  # called outside a Hydra app: no job directory to write into
        return
    if getattr(rank_zero_only, "rank", 0) != 0:  # DDP: the processes share the run dir; rank 0 reports
        return
    try:
        write_json_atomic(out / STATUS_FILE, {"overrides": list(HydraConfig.get().overrides.task), **status})
    except OSError as exc:  # never hide the job's own outcome behind a bookkeeping failure
        log.error("could not write %s: %s", out / STATUS_FILE, exc)


# A file system that refuses writes: read-only, full, over quota.
_FULL_OR_READ_ONLY = {errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def pipeline_job(
    run: Callable[[DictConfig], Mapping[str, Any] | None],
) -> Callable[[DictConfig], float]:
    """Wrap a pipeline's ``run(cfg) -> metrics`` into the Hydra task function (see the module docstring)."""

    @functools.wraps(run)
    def task(cfg: DictConfig) -> float:
        out, t0 = run_dir(), time.time()
        try:  # outside a Hydra app (a test calling main) there is no run folder of its own to claim
            task = task_of(cfg)
            training = task is None or task.kind == "train"
            folder = claim_run_folder(cfg, out, training) if HydraConfig.initialized() else None
        except RunFolderError as exc:  # not recorded: the folder's job_status.json is the other run's
            if not _in_multirun():
                raise SystemExit(f"run folder error: {exc}") from None
            if not _basic_sweeper():
                raise  # e.g. Optuna: a failed trial
            log.error("job refused (the sweep goes on): %s", exc)
            return math.nan
        try:
            return _run_job(run, cfg, out, t0)
        finally:
            if folder is not None:
                folder.release()

    return task


def _run_job(
    run: Callable[[DictConfig], Mapping[str, Any] | None], cfg: DictConfig, out: Path, t0: float
) -> float:
    """The job in a folder it owns: run, record the outcome, return the objective (see :func:`pipeline_job`)."""
    try:
        metrics = dict(run(cfg) or {})
    except TrainingInterrupted as exc:  # SIGTERM: the whole process ends (a sweep too), saying how to resume
        _record(
            out, status="interrupted", error=str(exc), resume=exc.command, seconds=round(time.time() - t0, 3)
        )
        print(f"interrupted: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(exc.exit_code) from None
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}".strip()
        _record(out, status="failed", error=error, seconds=round(time.time() - t0, 3))
        if not _in_multirun():
            if isinstance(exc, ConfigError):
                raise SystemExit(f"config error: {exc}") from None
            if isinstance(exc, OutputError):
                raise SystemExit(f"output error: {exc}") from None
            if isinstance(exc, OSError) and exc.errno in _FULL_OR_READ_ONLY:  # a write in the library
                raise SystemExit(f"output error: {exc}") from None
            why = disk_refuses_writes(out)  # e.g. torch's checkpoint writer: a RuntimeError, no errno
            if why is not None:
                raise SystemExit(f"output error: cannot write {out}: {why} ({error[:200]})") from None
            raise
        if not _basic_sweeper():
            raise  # e.g. Optuna: the sweeper records a failed trial (its max_failure_rate decides)
        log.error("job failed (the sweep goes on): %s\n%s", error, traceback.format_exc())
        return math.nan
    value = objective_value(cfg, metrics)
    _record(
        out,
        status="completed",
        objective=value,
        metrics={k: _number(v) if _number(v) is not None else v for k, v in metrics.items()},
        seconds=round(time.time() - t0, 3),
    )
    if value is None and _in_multirun() and not _basic_sweeper():
        metric = OmegaConf.select(cfg, "objective.metric")
        raise ValueError(f"objective.metric={metric} is not a finite number in this job's metrics")
    return math.nan if value is None else value  # NaN = no objective (a grid sweep only lists it)


# ---------------------------------------------------------------------------------------------------- summary


def _job_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per job directory (``<sweep_dir>/<n>/.hydra/overrides.yaml``)."""
    rows = []
    for hydra_dir in sweep_dir.glob("*/.hydra"):
        job = hydra_dir.parent
        overrides_file = hydra_dir / "overrides.yaml"
        overrides = [str(o) for o in OmegaConf.load(overrides_file)] if overrides_file.is_file() else []
        status: dict[str, Any] = {"status": "unknown", "error": "no job_status.json (killed?)"}
        if (job / STATUS_FILE).is_file():
            try:
                status = json.loads((job / STATUS_FILE).read_text())
            except (OSError, ValueError) as exc:
                status = {"status": "unknown", "error": f"unreadable {STATUS_FILE}: {exc}"}
        metrics = status.get("metrics") or {}
        if not metrics and (job / "metrics.json").is_file():
            try:
                metrics = json.loads((job / "metrics.json").read_text())
            except (OSError, ValueError):
                metrics = {}
        rows.append(
            {
                "job": job.name,
                "overrides": overrides,
                "status": status.get("status", "unknown"),
                "objective": _number(status.get("objective")),
                "metrics": metrics,
                "error": status.get("error", ""),
                "seconds": status.get("seconds"),
            }
        )
    return rows


def _sort(rows: list[dict[str, Any]], direction: str) -> list[dict[str, Any]]:
    sign = -1.0 if direction == "maximize" else 1.0

    def key(row: dict[str, Any]) -> tuple[int, float, str]:
        value = row["objective"]
        job = row["job"]
        order = int(job) if job.isdigit() else 0
        return (0, sign * value, f"{order:09d}") if value is not None else (1, 0.0, f"{order:09d}")

    return sorted(rows, key=key)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def write_summary(sweep_dir: Path, metric: str, direction: str) -> list[dict[str, Any]]:
    """Write sweep_summary.csv and sweep_summary.md for the jobs under ``sweep_dir``; returns the sorted rows."""
    rows = _sort(_job_rows(sweep_dir), direction)
    # overrides shared by every job go into the header; the table shows what differs
    common = set.intersection(*(set(r["overrides"]) for r in rows)) if rows else set()
    for r in rows:
        r["varied"] = " ".join(o for o in r["overrides"] if o not in common)
    metric_keys = sorted({k for r in rows for k in r["metrics"]} - {metric})
    with (sweep_dir / SUMMARY_CSV).open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["job", "overrides", "status", metric, *metric_keys, "seconds", "error"])
        for r in rows:
            w.writerow(
                [r["job"], " ".join(r["overrides"]), r["status"], _fmt(r["objective"])]
                + [r["metrics"].get(k, "") for k in metric_keys]
                + [r["seconds"] if r["seconds"] is not None else "", r["error"]]
            )
    shown = [k for k in metric_keys if k.startswith("test/")][:6]
    lines = [
        f"# sweep {sweep_dir}",
        "",
        f"{len(rows)} jobs, {sum(r['status'] == 'completed' for r in rows)} completed; sorted by {metric} "
        f"({direction}).",
        f"Common overrides: `{' '.join(sorted(common))}`" if common else "",
        "",
        "| rank | job | overrides | status | " + " | ".join([metric, *shown]) + " | error |",
        "|" + "---|" * (6 + len(shown)),
    ]
    for i, r in enumerate(rows, 1):
        error = r["error"][:200]
        cells = [str(i), r["job"], r["varied"], r["status"], _fmt(r["objective"])]
        cells += [_fmt(r["metrics"].get(k)) for k in shown] + [_fmt(error)]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(line for line in lines if line is not None) + "\n"
    (sweep_dir / SUMMARY_MD).write_text(text)
    return rows


class SweepSummary(Callback):
    """Hydra callback: at the end of a multirun, summarise its jobs (see :func:`write_summary`)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if not sweep_dir.is_dir():
            return
        metric = str(OmegaConf.select(config, "objective.metric", default="") or "objective")
        direction = str(OmegaConf.select(config, "objective.direction", default="minimize"))
        write_summary(sweep_dir, metric, direction)
        print((sweep_dir / SUMMARY_MD).read_text(), flush=True)
