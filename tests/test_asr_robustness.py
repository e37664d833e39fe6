"""benchmarks/asr_robustness.py end to end on a smoke checkpoint and a tiny held-out set (slow tier)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from benchmarks.asr_robustness import ASTERISK_WORDS, ENGINES, heldout_sentences, run
from lstm_seq.audio.data.grammar import vocabulary
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


def test_real_speech_sets_are_grammar_words(tmp_path: Path) -> None:
    """The real-speech sets hold only grammar words (so the LM can spell them); where the recordings are installed
    each text becomes one 8 kHz file whose length grows with its words."""
    engine = ENGINES["asterisk"]
    assert set(ASTERISK_WORDS) <= vocabulary() and len(ASTERISK_WORDS) == 48
    words, phrases = engine.texts("words", 0), engine.texts("phrases", 0)
    assert phrases == engine.texts("phrases", 0) and len(set(phrases)) == 40
    assert all(2 <= len(p.split()) <= 3 and set(p.split()) <= set(ASTERISK_WORDS) for p in phrases)
    if not engine.available():
        pytest.skip(f"the recordings are not installed ({engine.install})")
    paths = engine.render("phrases", ["five", "five minutes", "at nine o'clock"], tmp_path)
    infos = [sf.info(p) for p in paths]
    assert all(i.samplerate == 8000 for i in infos)
    assert infos[0].duration < infos[1].duration < infos[2].duration
    assert len(engine.render("words", words[:3], tmp_path)) == 3


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
    engines = ["flite", "asterisk"] if ENGINES["asterisk"].available() else ["flite"]
    result = run([*argv, "--engines", *engines, "--test-manifest", str(test_manifest), "--tag", "smoke"])
    names = [c["name"] for c in result["cases"]]
    assert (
        names[0].startswith("espeak-ng test")
        and "held-out (all synthetic engines)" in names
        and "flite" in names
    )
    if "asterisk" in engines:  # the real-speech sets: reported, but not pooled with the synthetic engines
        real = {c["name"]: c for c in result["cases"] if c["name"].startswith("asterisk")}
        assert real["asterisk/words"]["utterances"] == len(ASTERISK_WORDS) and real["asterisk"]["real"]
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
