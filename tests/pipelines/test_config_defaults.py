"""Each setting is defined once, on a dataclass field, and conf/ shows its value: every option file under conf/
is what ``python -m pipelines.conf_values`` writes from the dataclasses (a default changed in the code and not
rewritten into conf/ fails here, naming the file, the key and both values); and calling the library with no
arguments gives what the command line runs, except the values an option file marks as its own."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lstm_seq.audio.decoding.decode import DecodeConfig
from lstm_seq.audio.features import FeatureConfig
from lstm_seq.audio.model import ModelConfig
from lstm_seq.training.optim import PRESETS, OptimConfig
from lstm_seq.vision.decoder import AttentionDecoderConfig
from lstm_seq.vision.encoder import EncoderConfig
from lstm_seq.vision.module import CaptionModelConfig
from pipelines import conf_values
from pipelines.conf_values import CONF, Conf, differences

# the library classes whose defaults the command line used to disagree with (issue 16)
LIBRARY = {
    "asr": {"features": FeatureConfig, "model": ModelConfig, "decode": DecodeConfig},
    "caption": {"encoder": EncoderConfig, "decoder": AttentionDecoderConfig, "model": CaptionModelConfig},
}


def test_conf_shows_the_values_the_writer_writes() -> None:
    """The default-tier check of conf/: run ``python -m pipelines.conf_values`` when it fails."""
    found = differences(CONF)
    assert not found, "\n".join(found)


@pytest.fixture(scope="module")
def hydra_conf() -> Iterator[None]:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield


def _own_keys(pipeline: str) -> set[str]:
    """The keys of the default config whose value an option file (or the primary) marks as its own."""
    conf = Conf(CONF)
    own = {k for k, _ in conf_values._leaves(conf_values._own_tree(conf.adopted(f"{pipeline}.yaml").entries))}
    for group, option in conf.primaries[pipeline][1].items():
        if (CONF / group / f"{option}.yaml").is_file():
            own |= {f"{group}.{k}" for k in conf.full(f"{group}/{option}.yaml").origin}
    return own


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


@pytest.mark.parametrize("pipeline", ["asr", "caption"])
def test_library_classes_give_the_command_line_defaults(hydra_conf: None, pipeline: str) -> None:
    """Calling the library gives the model the command line trains (n_mfcc, sizes, learning rates, …), except
    the values marked '# this option' in conf/ (e.g. the scenes' encoder stride)."""
    cfg = OmegaConf.to_container(compose(pipeline), resolve=False)
    assert isinstance(cfg, dict)
    own = _own_keys(pipeline)
    assert {"asr": "features.sample_rate", "caption": "encoder.output_stride"}[pipeline] in own
    compared = 0
    for group, cls in LIBRARY[pipeline].items():
        for f in dataclasses.fields(cls):
            key = f"{group}.{f.name}"
            if key in own or f.name not in cfg[group]:
                continue
            assert _plain(cfg[group][f.name]) == _plain(getattr(cls(), f.name)), key
            compared += 1
    assert compared > 20


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_optim_file_holds_its_library_preset(hydra_conf: None, name: str) -> None:
    """conf/optim/<name>.yaml composes to ``PRESETS[name]`` (what a module built from Python trains with), for
    either pipeline; the pipelines' defaults pick the one the modules default to."""
    for pipeline in ("asr", "caption"):
        composed = OmegaConf.to_container(compose(pipeline, overrides=[f"optim={name}"]).optim)
        assert composed == dataclasses.asdict(PRESETS[name]), (pipeline, name)
    assert OmegaConf.to_container(compose("asr").optim) == dataclasses.asdict(OptimConfig())
    assert OmegaConf.to_container(compose("caption").optim) == dataclasses.asdict(PRESETS["warmup_cosine"])
