"""A disk that refuses writes: transcripts.jsonl keeps whole rows only and the error names the file; a run
folder whose log file cannot be opened stops at once with one line naming it (exit status 1); errors without
an errno (torch's checkpoint writer, libsndfile) are recognised by asking the file system."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from lstm_seq.outputs import JsonlWriter, OutputError, disk_refuses_writes
from tests._env import ROOT, clean_env
from tests.audio.conftest import speechlike

# transcribe_to_jsonl under a file-size limit (RLIMIT_FSIZE: writes past it fail, as on a full disk)
FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
from lstm_seq.audio import Recognizer
from lstm_seq.audio.transcribe import transcribe_to_jsonl
from tests.audio.test_recognizer import _module
recognizer = Recognizer(_module(), decode="greedy")
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), resource.RLIM_INFINITY))
try:
    transcribe_to_jsonl(recognizer, sys.argv[1], sys.argv[2])
except OSError as exc:
    print(f"ERROR {type(exc).__name__}: {exc}")
"""


def test_transcripts_keep_whole_rows_when_the_disk_fills(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    audio.mkdir()
    for i in range(6):
        sf.write(audio / f"clip{i}.wav", speechlike(0.3, seed=i), 16000)
    out = tmp_path / "run" / "transcripts.jsonl"
    row = len(json.dumps({"path": str(audio / "clip0.wav"), "text": "", "duration": 0.3}))
    limit = 2 * row + row // 2  # room for two and a half rows
    proc = subprocess.run([sys.executable, "-c", FULL_DISK, str(audio), str(out), str(limit)], cwd=ROOT,
                          env=clean_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"ERROR OutputError: cannot write {out}: File too large (2 whole rows kept)" in proc.stdout
    text = out.read_text()
    assert text.endswith("\n")  # before: the third row cut in the middle
    assert [json.loads(line)["path"] for line in text.splitlines()] == [
        str(audio / f"clip{i}.wav") for i in (0, 1)
    ]


def test_jsonl_writer_retries_short_writes_and_cuts_back_a_failed_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write, second_row_calls = os.write, []

    def short_then_full(fd: int, data: bytes) -> int:
        if b"cut" in bytes(data) or second_row_calls:  # the second row: one short write, then a full disk
            second_row_calls.append(len(data))
            if len(second_row_calls) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, bytes(data[: max(1, len(data) // 2)]))  # short writes: half each time

    path = tmp_path / "rows.jsonl"
    with JsonlWriter(path) as out:
        monkeypatch.setattr(os, "write", short_then_full)
        out.write({"a": 1})  # two writes of 8 bytes: 4 + 4
        with pytest.raises(
            OutputError, match=rf"cannot write {path}: No space left on device \(1 whole rows kept\)"
        ):
            out.write({"b": "long enough to be cut"})
        monkeypatch.undo()
    assert path.read_text() == '{"a": 1}\n'


def test_a_log_file_that_cannot_be_opened_stops_the_run_with_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "asr.log").mkdir(parents=True)  # what cannot be opened for writing (a read-only disk is the same)
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.asr", "debug=smoke", "logger=none", f"hydra.run.dir={run}",
         f"paths.data_dir={tmp_path / 'data'}"],
        cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1
    assert (
        proc.stderr.strip().splitlines()[-1]
        == f"output error: cannot write {run / 'asr.log'}: Is a directory"
    )
    assert "Unable to configure handler" not in proc.stderr and not (tmp_path / "data").exists()


def test_disk_refuses_writes_asks_the_file_system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert disk_refuses_writes(tmp_path / "not" / "yet") is None
    real = os.statvfs(tmp_path)

    class Full:
        f_flag, f_blocks, f_bavail, f_files, f_favail = real.f_flag, 1000, 0, 1000, 10

    class ReadOnly(Full):
        f_flag, f_bavail = real.f_flag | os.ST_RDONLY, 10

    class NoInodeCounts(Full):  # btrfs: no fixed number of inodes, all counts 0
        f_bavail, f_files, f_favail = 10, 0, 0

    for fake, why in (
        (Full, "No space left on device"),
        (ReadOnly, "Read-only file system"),
        (NoInodeCounts, None),
    ):
        monkeypatch.setattr(os, "statvfs", lambda _p, fake=fake: fake)
        assert disk_refuses_writes(tmp_path / "run") == why
