"""Temporary names that carry their writer (``<name>.tmp<pid>@<host>``), so that what a killed build left behind
(a half-written corpus or cache, possibly large) is found and removed by the next build.

A temporary is *stale* when it was written on this host by a process that no longer runs. One from another
host (a shared file system) is left alone: its process cannot be checked from here.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
from pathlib import Path

log = logging.getLogger(__name__)

_OWNER = re.compile(r"\.tmp(\d+)(?:@([A-Za-z0-9_-]+))?")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname().split(".")[0]) or "host"


def tmp_name(name: str) -> str:
    """``name`` with this process's marker: ``<name>.tmp<pid>@<host>``."""
    return f"{name}.tmp{os.getpid()}@{_host()}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it runs, as another user
        return True
    return True


def is_stale(path: Path) -> bool:
    """True for a temporary whose writer (pid, host) is known to be gone; names without a marker are not."""
    m = _OWNER.search(path.name)
    if m is None:
        return False
    host = m.group(2)
    if host is not None and host != _host():
        return False
    return not _alive(int(m.group(1)))


def remove_stale(folder: Path, pattern: str = "*.tmp*") -> list[Path]:
    """Remove the stale temporaries (folders or files) matching ``pattern`` in ``folder``; returns them."""
    removed = []
    if not folder.is_dir():
        return removed
    for path in sorted(folder.glob(pattern)):
        if not is_stale(path):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        log.info("removed %s, left by a build that did not finish", path)
        removed.append(path)
    return removed
