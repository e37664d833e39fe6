"""The generated speech corpus after damage: a wav file truncated or deleted after generation is found at the next
load (sizes.json) and the corpus generated again (byte-identical); folders left by a killed build are removed by
the next build; a build that finishes after another process's never deletes the other's finished corpus."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lstm_seq.audio.data import synth
from lstm_seq.audio.data.synth import SynthConfig, build_corpus, corpus_dir
from lstm_seq.stale_tmp import tmp_name

CFG = SynthConfig(n_utterances=6, val_speakers=1, test_speakers=1, val_fraction=0.2, test_fraction=0.2)


def dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(proc.stdout)


def test_a_truncated_or_lost_wav_is_named_and_generated_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = build_corpus(tmp_path, CFG, workers=1)["train"].parent
    assert (out / synth.SIZES).exists()
    wavs = sorted(out.glob("wavs/*/*.wav"))
    good = {p: p.read_bytes() for p in wavs}
    wavs[0].write_bytes(good[wavs[0]][: len(good[wavs[0]]) // 2])  # cut after generation
    wavs[-1].unlink()
    with caplog.at_level(logging.WARNING):
        build_corpus(tmp_path, CFG, workers=1)
    assert "2 audio file(s) are missing or differ in size" in caplog.text
    assert wavs[0].relative_to(out).as_posix() in caplog.text  # the file is named
    assert {p: p.read_bytes() for p in sorted(out.glob("wavs/*/*.wav"))} == good  # rebuilt, identical
    assert (out / "DONE").exists() and not list(out.parent.glob("*.tmp*"))


def test_folders_of_killed_builds_are_removed_at_the_next_build(tmp_path: Path) -> None:
    out = corpus_dir(tmp_path, CFG)
    pid, host = dead_pid(), tmp_name("x").split("@")[1]
    stale = [out.with_name(f"{out.name}.tmp{pid}"), out.with_name(f"{out.name}.tmp{pid}@{host}")]
    live = out.with_name(f"{out.name}.tmp{os.getppid()}@{host}")  # a build that still runs
    other_host = out.with_name(f"{out.name}.tmp{pid}@some-other-host")  # cannot be checked from here
    for d in (*stale, live, other_host):
        (d / "wavs").mkdir(parents=True)
        (d / "wavs" / "x.wav").write_bytes(b"RIFF")
    build_corpus(tmp_path, CFG, workers=1)
    assert not any(d.exists() for d in stale)
    assert live.exists() and other_host.exists()


def test_a_finished_corpus_of_another_process_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two first builds at once: the other process renames its corpus into place while this one renders; this
    one must not delete it (it may be training from it already) and uses it."""
    theirs = build_corpus(tmp_path / "other", CFG, workers=1)["train"].parent
    out = corpus_dir(tmp_path / "data", CFG)
    plan = synth._plan

    def plan_while_the_other_finishes(cfg: SynthConfig) -> list:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(theirs, out)
        (out / "IN_USE").write_text("the other run reads this corpus\n")
        return plan(cfg)

    monkeypatch.setattr(synth, "_plan", plan_while_the_other_finishes)
    manifests = build_corpus(tmp_path / "data", CFG, workers=1)
    assert (out / "IN_USE").exists()  # before the fix: deleted and replaced under the other run
    assert all(m.exists() for m in manifests.values()) and not list(out.parent.glob("*.tmp*"))
