"""Kill -9 through the command line, resume from last.ckpt: the same final weights, test metrics, training
counters and best checkpoint as a run that was never interrupted (same seed, deterministic CPU training).

Each pipeline runs on its smoke corpus with ``last.ckpt`` written after every optimizer step and at every
epoch end. A run kills itself (SIGKILL, ``LSTM_SEQ_KILL_AT``, see tests/training/_kill_switch.py) right after the
k-th write of ``last.ckpt``, right after a training batch (the last one of an epoch: before its
validation) or during a validation. The fast tier kills each pipeline twice in a chain: after the
end-of-epoch-0 save, then the resumed run right after its first (mid-epoch) save, then resumes again. The
slow tier kills at every write and at every epoch's last batch and in validations, and with
``resilience.checkpoint_every_n_steps=0`` after each end-of-epoch save.

The uninterrupted run's directory contains ``=`` and a space, so the ``pipelines.<p>.test`` command it prints must
be quoted to paste back: :func:`test_printed_test_command_pastes_back` runs it as printed.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from pipelines._hydra import hydra_value
from tests.training._pipeline import (
    env,
    loader_position,
    metrics,
    printed_ckpt,
    printed_command,
    run,
    saves,
    weights,
)

# overrides per pipeline on top of debug=smoke (caption smoke: 2 batches per epoch; asr smoke: a few)
EXTRA = {
    "caption": ["trainer.max_epochs=3"],
    # 15 ms frames: some utterances are too long for their subsampled length, so train/dropped_ctc
    # counts something (and is compared like every other counter)
    "asr": ["decode=greedy", "plot_utterances=0", "model.hidden_size=32", "model.num_layers=1",
            "features.hop_length=240"],
}  # fmt: skip


EVERY_STEP = "resilience.checkpoint_every_n_steps=1"


@dataclass
class Uninterrupted:
    """The reference run of one pipeline."""

    pipeline: str
    common: list[str]  # the overrides every run of this pipeline gets
    dir: Path
    proc: subprocess.CompletedProcess[str]
    writes: list[dict[str, Any]]  # every write of last.ckpt: epoch, step, moment

    @property
    def epoch_ends(self) -> list[int]:
        """k of the writes that are end-of-epoch saves (1-based, as LSTM_SEQ_KILL_AT=save:k counts)."""
        return [k for k, w in enumerate(self.writes, 1) if w["moment"] == "end of epoch"]


@pytest.fixture(scope="module", params=["caption", "asr"])
def uninterrupted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Uninterrupted:
    pipeline: str = request.param
    tmp = tmp_path_factory.mktemp(pipeline)
    common = [
        "debug=smoke",
        f"paths.data_dir={tmp_path_factory.getbasetemp() / 'data'}",
        EVERY_STEP,
        "trainer.deterministic=true",
        "trainer.accelerator=cpu",
        "logger=none",
        *EXTRA[pipeline],
    ]
    out = tmp / "whole run=1"  # '=' and ' ': the printed commands must quote it
    proc = run(pipeline, *common, f"hydra.run.dir={hydra_value(str(out))}")
    writes = saves(proc)
    assert writes and writes[-1]["moment"] == "end of epoch", writes
    if pipeline == "asr":
        assert metrics(out)["train/dropped_ctc"] > 0  # the counter is exercised
    return Uninterrupted(pipeline, common, out, proc, writes)


def _resume_and_compare(ref: Uninterrupted, last: Path, out: Path) -> None:
    proc = run(ref.pipeline, *ref.common, f"hydra.run.dir={out}", f"ckpt={last}")
    assert_same_run(ref, out, proc)


def assert_same_run(ref: Uninterrupted, resumed: Path, proc: subprocess.CompletedProcess[str]) -> None:
    """Final weights (torch.equal), metrics.json (test/*, train/* counters incl. dropped_ctc; not the
    wall-clock time) and the best checkpoint (its name and weights) equal those of ``ref``."""
    a, b = weights(ref.dir / "checkpoints" / "last.ckpt"), weights(resumed / "checkpoints" / "last.ckpt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ma, mb = metrics(ref.dir), metrics(resumed)
    # the sample identities of an epoch resumed mid-way are not in the checkpoint (only their count)
    skip = {"train/seconds"} | ({"train/samples_unique"} - mb.keys())
    assert {k: v for k, v in ma.items() if k not in skip} == {k: v for k, v in mb.items() if k not in skip}
    best_a, best_b = printed_ckpt(ref.proc), printed_ckpt(proc)
    assert best_a.name == best_b.name
    wa, wb = weights(best_a), weights(best_b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_kill_at_epoch_end_and_mid_epoch_then_resume(uninterrupted: Uninterrupted, tmp_path: Path) -> None:
    ref = uninterrupted
    first_end = ref.epoch_ends[0]
    run(ref.pipeline, *ref.common, f"hydra.run.dir={tmp_path / 'a'}", kill_at=f"save:{first_end}")
    last_a = tmp_path / "a" / "checkpoints" / "last.ckpt"
    pos = loader_position(last_a)
    assert pos["global_step"] == ref.writes[first_end - 1]["step"] and pos["epoch"] == 0, pos
    assert not (tmp_path / "a" / "metrics.json").exists()
    # resumed, and killed again right after its first write (the first step of epoch 1: mid-epoch)
    run(ref.pipeline, *ref.common, f"hydra.run.dir={tmp_path / 'b'}", f"ckpt={last_a}", kill_at="save:1")
    last_b = tmp_path / "b" / "checkpoints" / "last.ckpt"
    pos = loader_position(last_b)
    assert pos["epoch"] == 1 and pos["batches_done"] == 1, pos
    _resume_and_compare(ref, last_b, tmp_path / "c")


def test_printed_test_command_pastes_back(uninterrupted: Uninterrupted, tmp_path: Path) -> None:
    """The end-of-run summary's ``python -m pipelines.<pipeline>.test`` line, run as printed (from a fresh folder: it writes into
    outputs/ there), evaluates the best checkpoint again: the same test metrics."""
    ref = uninterrupted
    ckpt = printed_ckpt(ref.proc)
    assert ckpt.is_file() and "=" in str(ckpt) and "=" not in ckpt.name  # quoted dir, plain file name
    other = "transcribe" if ref.pipeline == "asr" else "generate"
    placeholder = "audio_dir=DIR" if ref.pipeline == "asr" else "image_dir=DIR"
    assert printed_command(ref.proc, other)[-1] == placeholder
    cmd = printed_command(ref.proc, "test")
    assert cmd[:3] == ["python", "-m", f"pipelines.{ref.pipeline}.test"]
    # only what the test task's config has: no trainer, model or logger settings of the training run
    assert not [
        a for a in cmd[3:] if a.split("=")[0].split(".")[0] in ("trainer", "model", "logger", "optim")
    ]
    proc = subprocess.run(
        [sys.executable, *cmd[1:]], cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (out,) = [p.parent for p in (tmp_path / "outputs").rglob("metrics.json")]
    tested = {k: v for k, v in metrics(out).items() if k.startswith("test/")}
    assert tested and tested == {k: v for k, v in metrics(ref.dir).items() if k.startswith("test/")}


@pytest.mark.slow
def test_kill_anywhere_then_resume(uninterrupted: Uninterrupted, tmp_path: Path) -> None:
    """Every write of last.ckpt (mid-epoch, end of epoch, the last one), right after each epoch's last
    batch, during the first validations; then every end-of-epoch save with checkpoint_every_n_steps=0
    (the same weights: checkpointing must not change the run)."""
    ref = uninterrupted
    batches = loader_position(ref.dir / "checkpoints" / "last.ckpt")["batches_done"]  # per epoch
    epochs = len(ref.epoch_ends)
    moments = [f"save:{k}" for k in range(1, len(ref.writes) + 1)]
    moments += [f"train_batch:{e * batches}" for e in range(1, epochs + 1)] + ["val_batch:1", "val_batch:2"]
    failed = []
    for moment in moments:
        name = moment.replace(":", "")
        run(ref.pipeline, *ref.common, f"hydra.run.dir={tmp_path / name}", kill_at=moment)
        try:
            _resume_and_compare(
                ref, tmp_path / name / "checkpoints" / "last.ckpt", tmp_path / f"{name}-resumed"
            )
        except AssertionError as exc:
            failed.append(f"{moment}: {str(exc)[:300]}")
    per_epoch = [o if o != EVERY_STEP else "resilience.checkpoint_every_n_steps=0" for o in ref.common]
    for k in range(1, epochs + 1):
        name = f"every0-save{k}"
        proc = run(ref.pipeline, *per_epoch, f"hydra.run.dir={tmp_path / name}", kill_at=f"save:{k}")
        assert [w["moment"] for w in saves(proc)] == ["end of epoch"] * k  # one write per epoch end
        try:
            last = tmp_path / name / "checkpoints" / "last.ckpt"
            out = tmp_path / f"{name}-resumed"
            assert_same_run(ref, out, run(ref.pipeline, *per_epoch, f"hydra.run.dir={out}", f"ckpt={last}"))
        except AssertionError as exc:
            failed.append(f"every_n_steps=0 save:{k}: {str(exc)[:300]}")
    assert not failed, "\n".join(failed)
