"""Outputs that cannot be written (read-only or full file system, a run folder that is a file) fail with one
clear error naming the file, and the earlier version of the file stays intact.

Tests run as root here and in CI, where chmod does not stop writes; so the read-only and full-disk cases make
the operating-system call itself fail (os.open with EROFS, os.fsync with ENOSPC: exactly what the kernel
returns), and the folder-is-a-file case is real."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from lstm_seq.outputs import (
    OutputError,
    write_json_atomic,
    write_jsonl_atomic,
    write_metrics,
    write_text_atomic,
)


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    write_metrics(out, {"test/wer": 0.25})
    return out


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_read_only_run_dir(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = (run / "metrics.json").read_bytes()
    real_open = os.open

    def read_only(path: str | os.PathLike[str], flags: int, *args: object, **kw: object) -> int:
        if Path(path).parent == run and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(OutputError) as info:
        write_metrics(run, {"test/wer": 0.5})
    assert str(info.value) == (
        f"cannot write {run / 'metrics.json'}: Read-only file system (the previous file is unchanged)"
    )
    assert info.value.errno == errno.EROFS
    monkeypatch.undo()
    assert (run / "metrics.json").read_bytes() == before and _leftovers(run) == []


def test_full_disk_keeps_the_previous_file(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = (run / "metrics.json").read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(
        OutputError, match=r"metrics\.json: No space left on device \(the previous file is unchanged\)"
    ):
        write_metrics(run, {"test/wer": 0.5, "test/cer": 0.1})
    monkeypatch.undo()
    assert (run / "metrics.json").read_bytes() == before
    assert _leftovers(run) == []  # the half-written temporary file is gone
    assert json.loads(before) == {"test/wer": 0.25}


def test_run_dir_that_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "outputs"
    blocker.write_text("not a folder")
    with pytest.raises(
        OutputError,
        match=r"^cannot write .*outputs/run/config\.json: Not a directory \(nothing was written\)",
    ):
        write_json_atomic(blocker / "run" / "config.json", {"a": 1})
    assert blocker.read_text() == "not a folder"


def test_failed_rename_keeps_the_previous_file(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = (run / "metrics.json").read_bytes()

    def busy(src: str, dst: str) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(os, "replace", busy)
    with pytest.raises(OutputError, match="Read-only file system"):
        write_metrics(run, {"test/wer": 0.5})
    monkeypatch.undo()
    assert (run / "metrics.json").read_bytes() == before and _leftovers(run) == []


def test_predictions_and_summaries_are_written_the_same_way(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """predictions.jsonl and summary.md go through the same atomic writer: a full disk keeps the old ones."""
    write_jsonl_atomic(run / "predictions.jsonl", [{"id": 1, "caption": "a red circle"}])
    write_text_atomic(run / "summary.md", "# run\n")
    before = {p: (run / p).read_bytes() for p in ("predictions.jsonl", "summary.md")}
    assert json.loads(before["predictions.jsonl"]) == {"id": 1, "caption": "a red circle"}

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputError, match=r"predictions\.jsonl: No space left on device"):
        write_jsonl_atomic(run / "predictions.jsonl", [{"id": 2, "caption": "x"}] * 1000)
    with pytest.raises(OutputError, match=r"summary\.md: No space left on device"):
        write_text_atomic(run / "summary.md", "# other\n")
    monkeypatch.undo()
    assert {p: (run / p).read_bytes() for p in before} == before and _leftovers(run) == []
