"""The run's log file handler (``hydra.job_logging.handlers.file``, conf/hydra/default.yaml; the file is
``<run dir>/<job name>.log``, the job named after the task's config: ``asr.log``, ``asr_test.log``, …): Hydra's own
``logging.FileHandler`` with a one-line error when the file cannot be opened (a read-only or full file system, a
folder in the way) instead of logging's ``Unable to configure handler 'file'``; the process exits with status 1
before any work."""

from __future__ import annotations

import logging
import sys


class RunLogFile(logging.FileHandler):
    """``logging.FileHandler`` that stops the run with ``cannot write PATH: REASON`` when it cannot open PATH."""

    def __init__(
        self, filename: str, mode: str = "a", encoding: str | None = None, delay: bool = False
    ) -> None:
        try:
            super().__init__(filename, mode, encoding, delay)
        except OSError as exc:
            # SystemExit passes through logging.config (which wraps Exceptions) and Hydra's error report
            print(f"output error: cannot write {filename}: {exc.strerror or exc}", file=sys.stderr)
            raise SystemExit(1) from None
