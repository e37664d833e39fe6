"""Writing a file so that readers and crashes only ever see the old or the new complete version."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from lstm_seq.stale_tmp import tmp_name


def fsync_dir(directory: Path) -> None:
    """Make a rename inside ``directory`` durable; a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. a platform without directory fds: the rename itself is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(fh)`` on a temporary file in ``path``'s folder, flush and fsync it, rename it over
    ``path`` (atomic on POSIX within one file system) and fsync the folder. On any failure the temporary
    file is removed and the exception (e.g. an ``OSError`` of a full or read-only disk) propagates, with
    the previous ``path`` untouched. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the writer in the name (lstm_seq.stale_tmp): what a killed writer leaves can be found and removed
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{tmp_name(path.name)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path
