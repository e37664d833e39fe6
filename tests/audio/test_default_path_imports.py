"""The default speech path never starts librosa's numba JIT (≈30 s on 2 cores): only the reference
feature backend may call into librosa."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CODE = """
import sys, torch
import pipelines.asr.__main__, pipelines.asr.test, pipelines.asr.transcribe  # every ASR entry point
from lstm_seq.audio.features import FeatureConfig, MFCC, compute_features
from lstm_seq.audio.decoding.setup import DecodingSetup
from lstm_seq.audio.decoding.decode import BeamConfig
from lstm_seq.audio.decoding.decoder import BeamSearchDecoder
from lstm_seq.audio.vocab import CharVocab
wave = torch.randn(2, 16000)
feats, frames = MFCC(FeatureConfig())(wave, torch.tensor([16000, 8000]))
v = CharVocab()
dec = DecodingSetup.from_texts(["go left", "turn right"]).decoder(v, BeamConfig(beam_size=4), sys.argv[1])
dec(torch.randn(2, 30, len(v)).log_softmax(-1), torch.tensor([30, 20]))
print("numba" in sys.modules)
compute_features([wave[0].numpy()], FeatureConfig(), backend="librosa")
print("numba" in sys.modules)
"""


def test_default_features_and_decoder_do_not_load_numba(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", CODE, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    # the positive control: the librosa backend does load numba, so the detector works
    assert out.stdout.split() == ["False", "True"]
