"""One run per run folder: a lock that a live second run cannot take, and no run over another run's records.

:func:`claim` is called at the start of every pipeline run (all modes) on the folder its outputs go to:

* **A live run owns its folder.** ``<folder>/.run.lock`` is held with ``flock`` for the whole run and names its
  owner (pid, host, start time, command). A second run into the same folder, while the first is alive, stops at
  once with :class:`RunFolderError` naming the folder and the owner. The kernel drops the lock when its process
  dies, whatever killed it, so the lock of a dead run is simply taken over (where the file system cannot
  ``flock``, the pid is checked on the same host instead).
* **A finished (or interrupted) run's folder is not reused.** A folder that already holds anything besides
  Hydra's own files (``.hydra/``, the job's ``.log``) and the lock is refused, so no run mixes its checkpoints,
  metrics and predictions with another's, unless the run *resumes training from a checkpoint inside that
  folder* (``ckpt=<folder>/checkpoints/last.ckpt hydra.run.dir=<folder>``): it continues that run, and the
  earlier attempt's records (metrics.json, predictions, beam tuning, …: everything but ``checkpoints/`` and
  the loggers' folders) are moved to ``<folder>/superseded/<time>/`` so that every record in the folder is
  the resumed run's.

Only the first process of a data-parallel job claims the folder (the others share it): a process whose
``RANK``, ``LOCAL_RANK``, ``NODE_RANK`` or ``SLURM_PROCID`` is not 0 does nothing.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

LOCK_FILE = ".run.lock"
SUPERSEDED = "superseded"
# Hydra writes these into the folder before the run starts; the loggers' folders survive a resume in place
_HYDRA_OWN = (".hydra",)
_KEPT_ON_RESUME = ("checkpoints", "csv", "tensorboard", SUPERSEDED)
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


class RunFolderError(RuntimeError):
    """The run folder belongs to another run (a live one, or a finished one's records); names the folder."""


def first_process() -> bool:
    """False in the second and later processes of a data-parallel job (they share rank 0's folder)."""
    return all(os.environ.get(v, "0").strip() in ("", "0") for v in _RANK_VARIABLES)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _describe(owner: dict[str, object]) -> str:
    started = owner.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(started))) if started else "?"  # type: ignore[arg-type]
    return f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}, started {when}: {owner.get('command', '?')}"


class RunFolder:
    """This process's claim on a run folder (see the module docstring); :meth:`release` at the end of the run."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self._fd = fd

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_FILE

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        try:
            self.lock_path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None


def _lock(folder: Path) -> int:
    """Take ``<folder>/.run.lock``; returns its descriptor (held until :meth:`RunFolder.release` or exit)."""
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFolderError(
                f"another run is writing into the run folder {folder} ({_describe(_read_owner(path))}); "
                "give this run its own folder (leave hydra.run.dir at its default, or choose another one)"
            ) from None
        except OSError as exc:  # a file system without flock: check the recorded owner instead
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
            owner = _read_owner(path)
            pid, host = owner.get("pid"), owner.get("host")
            if isinstance(pid, int) and pid != os.getpid():
                if host != socket.gethostname() or _pid_alive(pid):
                    raise RunFolderError(
                        f"the run folder {folder} is locked by {_describe(owner)}; if that run has ended, "
                        f"delete {path}"
                    ) from None
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.time(),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(owner) + "\n").encode(), 0)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _read_owner(path: Path) -> dict[str, object]:
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def records(folder: Path) -> list[str]:
    """What the folder holds besides Hydra's own files and the lock: the records of an earlier run."""
    if not folder.is_dir():
        return []
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.name != LOCK_FILE and p.name not in _HYDRA_OWN and not (p.suffix == ".log" and p.is_file())
    )


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def claim(folder: str | os.PathLike[str], resume_from: str | os.PathLike[str] | None = None) -> RunFolder:
    """Make ``folder`` this run's (see the module docstring).

    Args:
        folder: the run folder (created if missing).
        resume_from: the checkpoint a training run resumes from; when it lies inside ``folder`` the run
            continues that folder's run, and the earlier records are moved to ``superseded/<time>/``.

    Raises:
        RunFolderError: a live run holds the folder, or the folder holds another run's records.
    """
    path = Path(folder)
    if not first_process():
        return RunFolder(path, None)
    path.mkdir(parents=True, exist_ok=True)
    fd = _lock(path)
    claimed = RunFolder(path, fd)
    try:
        found = records(path)
        if found and resume_from is not None and _inside(Path(resume_from), path):
            _supersede(path, [n for n in found if n not in _KEPT_ON_RESUME])
        elif found:
            listed = ", ".join(found[:6]) + (f" and {len(found) - 6} more" if len(found) > 6 else "")
            raise RunFolderError(
                f"the run folder {path} already holds another run's files ({listed}); a run writes into a "
                "folder of its own, or resumes training from a checkpoint in it "
                f"(ckpt={path / 'checkpoints' / 'last.ckpt'})"
            )
    except BaseException:
        claimed.release()
        raise
    return claimed


def _supersede(folder: Path, names: list[str]) -> None:
    if not names:
        return
    dest = folder / SUPERSEDED / time.strftime("%Y-%m-%d_%H-%M-%S")
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.move(str(folder / name), str(dest / name))
