"""Fuzzing command-line overrides: random values for typed keys compose and validate, or fail with Hydra's
composition error or our ConfigError naming the key, or with the override grammar's own parse error (text
that is not an override at all); nothing else escapes."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, OverrideParseException
from hypothesis import given
from hypothesis import strategies as st
from omegaconf import OmegaConf

from pipelines._config import validate
from pipelines._hydra import ConfigError
from tests.fuzz.conftest import FUZZ

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)
KEYS = {
    "asr": ["model.hidden_size", "model.dropout", "model.subsample", "optim.lr", "data.val_fraction",
            "features.n_mfcc", "decode.beam_size", "trainer.max_epochs", "ckpt", "seed"],
    "caption": ["decoder.hidden_size", "decoder.dropout", "model.sampling_max", "data.batch_size",
                "encoder.output_stride", "threads", "optim.lr", "ckpt"],
    "asr_test": ["ckpt", "device", "data.batch_size", "decode.beam_size", "seed"],
    "asr_transcribe": ["ckpt", "audio_dir", "chunk_s", "decode.beam_size"],
    "caption_generate": ["ckpt", "image_dir", "generate.batch_size", "threads"],
}  # fmt: skip
VALUES = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["null", "true", "false", "''", "[]", "[1,2]", "{a: 1}", "???", "${seed}", "${nope}",
                     "1e400", "-0.0", "nan", "inf", "train", "test", "/", "/nonexistent/x.ckpt"]),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12),
)  # fmt: skip


# key → the range validate() must enforce
BOUNDED = {
    "model.hidden_size": (0, math.inf), "model.dropout": (0, 1), "optim.lr": (0, math.inf),
    "data.val_fraction": (0, 1), "features.n_mfcc": (0, math.inf), "decode.beam_size": (0, math.inf),
    "trainer.max_epochs": (0, math.inf), "decoder.hidden_size": (0, math.inf), "decoder.dropout": (0, 1),
    "model.sampling_max": (0, 1), "data.batch_size": (0, math.inf), "threads": (0, math.inf),
    "chunk_s": (0, math.inf), "generate.batch_size": (0, math.inf),
}  # fmt: skip
POSITIVE = {k for k, (low, high) in BOUNDED.items() if high == math.inf}


@pytest.fixture(scope="module")
def hydra_conf() -> Iterator[None]:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        yield


@FUZZ
@given(pipeline=st.sampled_from(sorted(KEYS)), data=st.data())
def test_random_overrides_fail_cleanly_or_validate(
    hydra_conf: None, pipeline: str, data: st.DataObject
) -> None:
    key = data.draw(st.sampled_from(KEYS[pipeline]))
    value = data.draw(VALUES)
    try:
        cfg = compose(pipeline, overrides=[f"paths.root_dir={ROOT}", f"{key}={value}"])
    except OverrideParseException as exc:
        # the text itself is not override grammar (Hydra's message quotes the offending input, not the key):
        # the grammar alone rejects it the same way, so it is not our config that failed
        with pytest.raises(OverrideParseException) as alone:
            OverridesParser.create().parse_overrides([f"{key}={value}"])
        assert str(alone.value) == str(exc), (str(alone.value), str(exc))
        return
    except ConfigCompositionException as exc:
        assert key in f"{exc} {exc.__cause__ or ''}", repr(exc)  # Hydra's composition error names the key
        return
    try:
        validate(cfg)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        first = str(exc).split()[0].split("=")[0]
        # a task's required inputs (``???``: ckpt, audio_dir, image_dir) come first: ``missing ckpt=PATH …``
        assert first.startswith(("missing", "ckpt", "image_dir", "audio_dir", key)) or key in str(exc), str(
            exc
        )
        return
    # accepted: then the value really is usable
    value_out = OmegaConf.select(cfg, key)
    if key in BOUNDED and not (key == "threads" and value_out is None):  # threads: null = torch's default
        assert isinstance(value_out, int | float) and math.isfinite(value_out), (key, value_out)
        low, high = BOUNDED[key]
        assert low <= value_out <= high and (low != 0 or key not in POSITIVE or value_out > 0), (
            key,
            value_out,
        )
