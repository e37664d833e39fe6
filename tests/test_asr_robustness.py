"""benchmarks/asr_robustness.py end to end on a smoke checkpoint and a tiny held-out set (slow tier)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.asr_robustness import ENGINES, heldout_sentences, run
from tests._env import clean_env

ROOT = Path(__file__).resolve().parents[1]


def run_pipeline(*overrides: str) -> None:
    env = clean_env()
    cmd = [sys.executable, "-m", "pipelines.asr", *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_heldout_sentences_are_new_and_fixed() -> None:
    first = heldout_sentences(5, set())
    assert heldout_sentences(5, set()) == first and len(set(first)) == 5
    assert not set(heldout_sentences(5, {first[0], first[2]})) & {first[0], first[2]}


@pytest.mark.slow
def test_robustness_benchmark_on_a_smoke_checkpoint(tmp_path: Path) -> None:
    if not ENGINES["flite"].available():
        pytest.skip("flite is not installed (apt-get install flite)")
    data = tmp_path / "data"
    run_pipeline(
        "debug=smoke", "logger=none", "plot_utterances=0", f"paths.data_dir={data}",
        f"hydra.run.dir={tmp_path / 'run'}",
    )  # fmt: skip
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    test_manifest = next(data.glob("speech_synth/*/test.jsonl"))
    argv = ["--ckpt", str(ckpt), "--per-voice", "2", "--data-dir", str(data), "--out", str(tmp_path / "res")]
    result = run([*argv, "--engines", "flite", "--test-manifest", str(test_manifest), "--tag", "smoke"])
    names = [c["name"] for c in result["cases"]]
    assert names[0].startswith("espeak-ng test") and "held-out (all engines)" in names and "flite" in names
    voices = [n for n in names if n.startswith("flite/")]
    assert voices and all(c["utterances"] == 2 for c in result["cases"] if c["name"] in voices)
    for c in result["cases"]:
        assert 0 <= c["cer"] and 0 <= c["wer"] and c["utterances"] > 0
    saved = json.loads(Path(result["path"]).read_text())
    assert saved["cases"][0]["name"] == names[0] and "lm_weight" in saved["decoding"]
    # the held-out audio is cached: a rerun renders nothing (the folders keep their files)
    cached = sorted(p for p in (data / "asr_robustness").iterdir())
    stamp = {p: (p / "manifest.jsonl").stat().st_mtime_ns for p in cached}
    run([*argv, "--engines", "flite", "--no-in-domain"])
    assert {p: (p / "manifest.jsonl").stat().st_mtime_ns for p in cached} == stamp
    shutil.rmtree(data / "asr_robustness")
