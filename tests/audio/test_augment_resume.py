"""Kill -9 in the middle of an epoch with waveform augmentation on (augment=strong), resume from last.ckpt: the
same final weights and metrics as an uninterrupted run. The kill/resume machinery is tests/training's
(``_pipeline.run(kill_at=…)``, tests/training/_kill_switch.py); this test only adds the augmented ASR case.
Slow tier (three smoke runs); the fast tier has the loader-level resume test in test_augment.py, and
tests/training's own kill/resume test trains the ASR smoke run with the default augmentation on."""

from __future__ import annotations

import pytest
import torch

from tests.training._pipeline import loader_position, metrics, run, weights

# wall-clock time, and the sample identities of an epoch resumed mid-way (only their count is in the
# checkpoint); train/dropped_ctc is compared like every other counter
PER_PROCESS = {"train/seconds", "train/samples_unique"}


@pytest.mark.slow
def test_kill_mid_epoch_and_resume_with_augmentation(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("asr_aug")
    common = [
        "debug=smoke",
        "augment=strong",
        f"paths.data_dir={tmp_path_factory.getbasetemp() / 'data'}",
        "resilience.checkpoint_every_n_steps=2",
        "trainer.deterministic=true",
        "logger=none",
        "decode=greedy",
        "plot_utterances=0",
        "model.hidden_size=32",
        "model.num_layers=1",
        "features.hop_length=240",  # 15 ms frames: some utterances are dropped, so dropped_ctc counts
    ]
    run("asr", *common, f"hydra.run.dir={tmp / 'whole'}")
    # smoke: 6 batches per epoch, 2 epochs; killed after the 4th save (step 8) = in the middle of epoch 1
    run("asr", *common, f"hydra.run.dir={tmp / 'killed'}", kill_at="save:4")
    last = tmp / "killed" / "checkpoints" / "last.ckpt"
    pos = loader_position(last)
    assert pos["global_step"] == 8 and 0 < pos["batches_done"], pos
    run("asr", *common, f"hydra.run.dir={tmp / 'resumed'}", f"ckpt={last}")
    a = weights(tmp / "whole" / "checkpoints" / "last.ckpt")
    b = weights(tmp / "resumed" / "checkpoints" / "last.ckpt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ma, mb = metrics(tmp / "whole"), metrics(tmp / "resumed")
    assert ma["train/dropped_ctc"] > 0  # the counter is exercised
    assert {k: v for k, v in ma.items() if k not in PER_PROCESS} == {
        k: v for k, v in mb.items() if k not in PER_PROCESS
    }
