"""Glue shared by the Hydra entry points: the one instantiate helper, run-directory paths,
trainer/logger construction and the training run both pipelines share (:func:`fit`).

Only ``pipelines/`` imports Hydra or OmegaConf; the library (``lstm_seq``) never does.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate as _hydra_instantiate
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from lstm_seq.outputs import write_metrics
from lstm_seq.training import (
    AtomicCheckpointIO,
    NonFiniteLossError,
    RunCheckpoint,
    end_data_parallel,
    fault_tolerance_callbacks,
    stop_message,
    training_report,
)
from lstm_seq.training.checkpoint_io import load_checkpoint_file
from lstm_seq.training.run_folder import RunFolder, claim
from lstm_seq.training.run_settings import ResumeSettingsError, RunSettings, check_resume

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key."""


class TrainingInterrupted(RuntimeError):
    """Training stopped by SIGTERM (a cluster scheduler's or ``docker stop``'s signal); the message names the
    checkpoint to resume from and the command that does it (:attr:`command`). The process exits with
    :attr:`exit_code` (128 + the signal's number, as a shell reports a process the signal ended)."""

    exit_code = 128 + signal.SIGTERM

    def __init__(self, message: str, command: str) -> None:
        super().__init__(message)
        self.command = command


def plain(node: Any) -> Any:
    """A config node as plain Python containers, interpolations resolved (what the library's functions take)."""
    return OmegaConf.to_container(node, resolve=True)


def instantiate(node: Any, **kwargs: Any) -> Any:
    """Instantiate a ``_target_`` config node; an import or constructor failure is re-raised with its
    real cause in the message instead of Hydra's generic "Error locating target"."""
    try:
        return _hydra_instantiate(node, **kwargs)
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        target = node.get("_target_", "?") if isinstance(node, Mapping | DictConfig) else "?"
        raise ConfigError(f"cannot build {target}: {type(cause).__name__}: {cause}") from cause


def run_dir() -> Path:
    """The current Hydra run directory (``hydra.runtime.output_dir``); the cwd outside Hydra."""
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path.cwd()


def claim_run_folder(cfg: DictConfig, out: Path, training: bool = True) -> RunFolder:
    """Make ``out`` this run's folder (:func:`lstm_seq.training.run_folder.claim`): refused while another
    live run writes there, and when it holds another run's files, unless this run is a ``training`` run that
    resumes from a checkpoint inside it (``ckpt=``)."""
    resume = OmegaConf.select(cfg, "ckpt", default=None, throw_on_missing=False) if training else None
    return claim(out, resolve_path(resume) if resume else None)


def resolve_path(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Path:
    """Resolve a user path against the launch directory (Hydra does not chdir)."""
    p = Path(os.path.expanduser(str(path)))
    if p.is_absolute():
        return p
    base = Path(root) if root is not None else Path.cwd()
    if root is None and HydraConfig.initialized():
        base = Path(HydraConfig.get().runtime.cwd)
    return (base / p).resolve()


def make_loggers(logger_cfg: DictConfig | None, out_dir: Path) -> list[Any]:
    """Build every logger in the ``logger`` group with ``save_dir`` = the run directory."""
    if not logger_cfg:
        return []
    return [instantiate(node, save_dir=str(out_dir)) for node in logger_cfg.values() if node is not None]


def resolve_precision(precision: Any, accelerator: str, cuda_available: bool | None = None) -> Any:
    """``trainer.precision``: ``auto`` is ``bf16-mixed`` when the run is on a GPU (``accelerator`` gpu or cuda,
    or ``auto`` with CUDA available, which Lightning then picks) and ``32-true`` otherwise; any other value
    is kept as given. ``cuda_available`` defaults to ``torch.cuda.is_available()``."""
    if precision != "auto":
        return precision
    if accelerator == "auto":
        gpu = torch.cuda.is_available() if cuda_available is None else cuda_available
    else:
        gpu = accelerator in ("gpu", "cuda")
    return "bf16-mixed" if gpu else "32-true"


def make_trainer(
    trainer_cfg: DictConfig,
    out_dir: Path,
    callbacks: list[Any],
    loggers: list[Any] | bool,
    resilience: DictConfig | Mapping[str, Any] | None = None,
    single_device: bool = False,
) -> Any:
    """Build the Lightning Trainer; ``precision: auto`` means bf16-mixed on a GPU and 32-true on CPU.

    Every trainer writes checkpoints atomically and loads them with ``weights_only=True``
    (:class:`~lstm_seq.training.AtomicCheckpointIO`). ``use_distributed_sampler`` defaults to False: the
    training samplers shard themselves over DDP ranks (a DistributedSampler would wrap the bucketing batch
    sampler wrongly and pad the data with repeated samples). With ``resilience`` (the config node of that
    name) the fault-tolerance callbacks are added (``last.ckpt`` at every epoch end and every N steps, exact
    resume, non-finite batch skipping); ``single_device`` builds a one-process trainer (testing after a DDP fit, on rank 0).
    """
    cfg = OmegaConf.to_container(trainer_cfg, resolve=True)
    assert isinstance(cfg, dict)
    cfg["precision"] = resolve_precision(cfg.get("precision", "auto"), str(cfg.get("accelerator", "cpu")))
    cfg.setdefault("default_root_dir", str(out_dir))
    cfg.setdefault("use_distributed_sampler", False)
    if single_device:
        cfg.update(devices=1, num_nodes=1, strategy="auto")
    callbacks = list(callbacks)
    if resilience is not None:
        res = resilience
        if isinstance(resilience, DictConfig):
            res = OmegaConf.to_container(resilience, resolve=True)
        callbacks += fault_tolerance_callbacks(
            out_dir / "checkpoints",
            checkpoint_every_n_steps=res.get("checkpoint_every_n_steps"),
            max_consecutive_bad_batches=res.get("max_consecutive_bad_batches"),
        )
    return instantiate(cfg, callbacks=callbacks, logger=loggers, plugins=[AtomicCheckpointIO()])


@dataclass
class Fitted:
    """What :func:`fit` leaves for testing.

    Attributes:
        trainer: the trainer that fitted (a single-device one after DDP, for rank 0's test).
        best: the best checkpoint by the monitored metric, else ``last.ckpt``; "" when none was written.
        report: ``train/seconds``, ``train/epochs`` and the fault-tolerance counters, for metrics.json.
    """

    trainer: Any
    best: str
    report: dict[str, Any]


def fit(
    cfg: DictConfig,
    module: Any,
    out: Path,
    monitor: str,
    mode: str,
    filename: str = "best",
    **data: Any,
) -> Fitted | None:
    """Train ``module`` the way both pipelines do: the ``trainer`` and ``logger`` groups, ``resilience``
    (``last.ckpt`` at every epoch end and every ``resilience.checkpoint_every_n_steps`` steps, exact resume,
    non-finite batch skipping), a checkpoint of the best ``monitor`` (``mode`` "min" or "max") named
    ``filename`` (a Lightning template without metric names inserted, e.g. ``best-epoch{epoch:02d}``, so no
    ``=`` in it) and ``last.ckpt`` under ``<out>/checkpoints``, early stopping when
    ``callbacks.early_stopping_patience`` is set, and resume from ``cfg.ckpt``. ``data`` goes to
    ``trainer.fit`` (``datamodule=`` or ``train_dataloaders=``/``val_dataloaders=``).

    Returns None on DDP ranks other than 0 (rank 0 alone tests and writes the outputs).

    Raises:
        NonFiniteLossError: too many non-finite batches in a row; metrics.json keeps the training counters
            and the message names ``last.ckpt``.
    """
    t0 = time.time()
    ckpt_cb = RunCheckpoint(
        dirpath=out / "checkpoints", filename=filename, monitor=monitor, mode=mode, save_last=False,
        auto_insert_metric_name=False,  # no "=" in file names: they are pasted back as ckpt=PATH
        enable_version_counter=False,  # a reused run dir: overwrite best.ckpt, no best-v1.ckpt
    )  # fmt: skip
    loggers = make_loggers(cfg.get("logger"), out)
    callbacks: list[Any] = [ckpt_cb]
    if loggers:  # the learning-rate monitor needs a logger
        callbacks.append(pl.callbacks.LearningRateMonitor("step"))
    patience = OmegaConf.select(cfg, "callbacks.early_stopping_patience", default=None)
    if patience:
        callbacks.append(pl.callbacks.EarlyStopping(monitor, patience=patience, mode=mode))
    settings = plain(cfg)
    if cfg.ckpt:
        check_resume_settings(resolve_path(cfg.ckpt), settings, module)
    callbacks.append(RunSettings(settings))  # every checkpoint records what this run trains with
    trainer = make_trainer(cfg.trainer, out, callbacks, loggers, resilience=cfg.get("resilience") or {})
    try:
        trainer.fit(module, ckpt_path=str(resolve_path(cfg.ckpt)) if cfg.ckpt else None, **data)
    except SIGTERMException:  # a SystemExit(0) of Lightning's: an interrupted run must not look finished
        write_metrics(out, _report(trainer, t0))
        raise _interrupted(trainer, out / "checkpoints" / "last.ckpt") from None
    report = _report(trainer, t0)
    halted = stop_message(trainer)
    if trainer.world_size > 1:
        if not end_data_parallel(trainer):
            return None
        trainer = make_trainer(cfg.trainer, out, [], loggers, single_device=True)
    if halted:
        write_metrics(out, report)
        raise NonFiniteLossError(f"{halted}; last checkpoint: {out / 'checkpoints' / 'last.ckpt'}")
    last = out / "checkpoints" / "last.ckpt"
    return Fitted(trainer, ckpt_cb.best_model_path or (str(last) if last.is_file() else ""), report)


# what a resumed training run may set differently from its checkpoint's run (a key and everything under it);
# the rest defines the model and what it trains on, and is refused (lstm_seq.training.run_settings). The peak
# learning rate and the schedule's shape apply from the resumed step on (lstm_seq.training.schedule). The most
# wanted come first: an error message lists the first few.
RESUMABLE = (
    "trainer.max_epochs", "trainer.max_steps", "optim.lr", "optim.pct_start", "optim.warmup_steps",
    "trainer.accelerator", "trainer.devices", "decode", "logger", "paths", "resilience", "callbacks",
    "trainer.max_time", "trainer.num_nodes", "trainer.strategy", "trainer.precision", "trainer.deterministic",
    "trainer.enable_progress_bar", "trainer.enable_model_summary", "trainer.log_every_n_steps", "objective",
    "plot_utterances", "threads", "data.num_workers", "data.synth_workers", "data.cache_dir", "ckpt",
)  # fmt: skip


def check_resume_settings(ckpt: Path, settings: Mapping[str, Any], module: Any) -> None:
    """Before resuming from ``ckpt``: refuse the settings that cannot change on a resume (a
    :class:`ConfigError` naming each key with both values); log the ones that change."""
    checkpoint = load_checkpoint_file(ckpt, "cpu", require_state_dict=False)
    try:
        applied = check_resume(checkpoint, settings, dict(module.hparams), RESUMABLE, str(ckpt))
    except ResumeSettingsError as exc:
        raise ConfigError(str(exc)) from None
    for key, (old, new) in applied.items():
        if key != "ckpt":
            log.info("resuming with %s=%r (the checkpoint's run had %r)", key, new, old)


def _report(trainer: Any, t0: float) -> dict[str, Any]:
    return {
        "train/seconds": time.time() - t0,
        "train/epochs": trainer.current_epoch,
        **training_report(trainer),
    }


def _interrupted(trainer: Any, last: Path) -> TrainingInterrupted:
    """What a run stopped by SIGTERM says: where it stopped, the checkpoint and the command to resume from it."""
    pipeline = HydraConfig.get().job.name if HydraConfig.initialized() else "PIPELINE"
    where = f"stopped by SIGTERM in epoch {trainer.current_epoch} after {trainer.global_step} optimizer steps"
    if not last.is_file():
        command = paste_command(pipeline, {})
        return TrainingInterrupted(
            f"{where}; no checkpoint was written yet. Start again with:\n  {command}", command
        )
    command = paste_command(pipeline, {"ckpt": str(last)})
    return TrainingInterrupted(f"{where}; last checkpoint {last}. Resume with:\n  {command}", command)


# ------------------------------------------------------------------------------------ commands to paste
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_\-+./:@%]+")  # read back by Hydra as this very string
_TYPED_VALUE = re.compile(r"[-+]?(\d[\d_]*)?(\.\d*)?([eE][-+]?\d+)?|true|false|null|[-+]?(inf|nan)", re.I)
_PLAIN_SHELL = re.compile(r"[A-Za-z0-9_\-+./:@%=,]+")  # needs no shell quoting
_DOUBLE_QUOTE_SAFE = re.compile(r'[^"$`\\!]*')  # can go between double quotes as is


def hydra_value(text: str) -> str:
    """``text`` as a Hydra 1.3 override value that Hydra reads back as exactly this string.

    Plain values (letters, digits, ``_-+./:@%``) stay as they are; anything else (``=``, spaces, commas,
    brackets, quotes, non-ASCII letters, ``${``) and values Hydra would read as a number, a bool or null
    are single-quoted, with ``'`` escaped as ``\\'``, the backslashes before a quote doubled and ``${``
    escaped so that it is not an interpolation.
    """
    if _PLAIN_VALUE.fullmatch(text) and not _TYPED_VALUE.fullmatch(text):
        return text
    quoted = re.sub(r"(\\+)('|$)", lambda m: m.group(1) * 2 + m.group(2), text)
    quoted = quoted.replace("'", "\\'").replace("${", "\\${")
    return f"'{quoted}'"


def shell_arg(override: str) -> str:
    """One ``key=value`` override as a shell word that pastes back unchanged: as is when it needs no
    quoting, ``key="value"`` when double quotes are enough (e.g. ``ckpt="'a=b.ckpt'"``), else
    :func:`shlex.quote`."""
    if _PLAIN_SHELL.fullmatch(override):
        return override
    key, sep, value = override.partition("=")
    if sep and _PLAIN_SHELL.fullmatch(key) and _DOUBLE_QUOTE_SAFE.fullmatch(value):
        return f'{key}="{value}"'
    return shlex.quote(override)


# what replaced each former ``mode=`` of ``python -m pipelines.<pipeline>``
_MODE_COMMANDS = {
    "test": "{p}.test ckpt=PATH",
    "transcribe": "{p}.transcribe ckpt=PATH audio_dir=DIR",
    "generate": "{p}.generate ckpt=PATH image_dir=DIR",
    "export": "{p}.export ckpt=PATH",
    "prepare": "{p}.prepare data=librispeech data.root=DIR",
    "train": "{p}",
}
_PIPELINE_TASKS = {
    "asr": ("test", "transcribe", "export", "prepare"),
    "caption": ("test", "generate", "export"),
}


def refuse_mode(pipeline: str, argv: Sequence[str] | None = None) -> None:
    """Before Hydra reads the command line: ``mode=X`` (gone: one entry point per task) ends the process with
    status 1 and one line naming the command that does X now, e.g. ``mode= is gone: use python -m
    pipelines.asr.test ckpt=PATH``."""
    for arg in sys.argv[1:] if argv is None else argv:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+~") == "mode":
            first, tasks = value.split(",")[0].strip(), _PIPELINE_TASKS.get(pipeline, ())
            if first == "train" or first in tasks:
                use = "python -m pipelines." + _MODE_COMMANDS[first].format(p=pipeline)
            else:
                use = " | ".join(f"python -m pipelines.{pipeline}.{t}" for t in tasks)
            print(f"mode= is gone: use {use}", file=sys.stderr)
            raise SystemExit(1)


# overrides of the run that a printed command leaves out: it sets them itself or they name this run
_OWN_KEYS = ("ckpt", "audio_dir", "image_dir")


def paste_command(
    pipeline: str,
    settings: Mapping[str, str],
    placeholders: Sequence[str] = (),
    accepts: Callable[[str], bool] | None = None,
    options: Mapping[str, str] | None = None,
) -> str:
    """A ``python -m pipelines.<pipeline> …`` line to paste into a shell (``pipeline`` e.g. ``asr`` or
    ``asr.test``): this run's command-line overrides that the target's config ``accepts`` (a key or group of
    it: the data, decoding and debug settings it was started with; all of them when ``accepts`` is None; never
    ``hydra.*``, which names this run's directory, nor the keys in ``settings``); then, for each group of the
    target's ``options`` (its primary's choices) that this run chose differently without an override the
    target keeps (an experiment's ``data=librispeech``), ``group=choice``; then ``settings`` (e.g.
    ``ckpt=PATH``, quoted for Hydra and the shell), then ``placeholders`` as they are (``audio_dir=DIR``).
    """
    keep: list[str] = []
    if HydraConfig.initialized():
        for o in HydraConfig.get().overrides.task:
            key = o.split("=", 1)[0].lstrip("+~")
            if key.startswith(("hydra.", "hydra/")) or key in _OWN_KEYS or key in settings:
                continue
            if accepts is not None and not accepts(key):
                continue
            keep.append(shell_arg(o))
        chosen = HydraConfig.get().runtime.choices
        given = {o.split("=", 1)[0].lstrip("+~") for o in keep}
        for group, default in (options or {}).items():
            choice = chosen.get(group)
            if (
                group not in ("hydra", "paths", "debug")
                and group not in given
                and choice not in (None, default)
            ):
                keep.append(shell_arg(f"{group}={choice}"))
    own = [shell_arg(f"{k}={hydra_value(str(v))}") for k, v in settings.items()]
    return " ".join(["python", "-m", f"pipelines.{pipeline}", *keep, *own, *placeholders])
