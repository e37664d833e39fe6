"""Each setting is defined once: every leaf of each pipeline's composed default config equals the default of the
dataclass field that defines it (a library settings class or a run key of pipelines/_config.py), except the
overrides the YAML files make on purpose, listed here with their reason. Restating a default in YAML fails."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from lstm_seq.audio.decoding.decode import DecodeConfig
from lstm_seq.audio.features import FeatureConfig
from lstm_seq.audio.model import ModelConfig
from lstm_seq.training.optim import PRESETS, OptimConfig
from lstm_seq.vision.decoder import AttentionDecoderConfig
from lstm_seq.vision.encoder import EncoderConfig
from lstm_seq.vision.module import CaptionModelConfig
from pipelines._config import register

ROOT = Path(__file__).resolve().parents[2]
# the files of each default config that set values (the package each one's keys land in)
FILES = {
    "asr": {"asr.yaml": "", "data/speech_synth.yaml": "data.", "features/mfcc.yaml": "features.",
            "model/asr_bilstm.yaml": "model.", "decode/beam_lm.yaml": "decode.", "augment/none.yaml": "augment.",
            "optim/onecycle.yaml": "optim.", "trainer/default.yaml": "trainer.", "paths/default.yaml": "paths.", "logger/default.yaml": "logger."},
    "caption": {"caption.yaml": "", "data/scenes.yaml": "data.", "encoder/resnet18.yaml": "encoder.",
                "decoder/attention.yaml": "decoder.", "optim/warmup_cosine.yaml": "optim.",
                "trainer/default.yaml": "trainer.",
                "paths/default.yaml": "paths.", "logger/default.yaml": "logger."},
}  # fmt: skip

# key -> why the YAML sets it (the value is whatever the YAML says; an unlisted key must equal its default)
ON_PURPOSE: dict[str, dict[str, str]] = {
    "asr": {
        "paths.root_dir": "conf/paths: the launch directory (an interpolation)",
        "paths.data_dir": "conf/paths: under the launch directory",
        "paths.output_dir": "conf/paths: under the launch directory",
        "trainer.gradient_clip_val": "conf/trainer/default.yaml: clip at 1.0 (Lightning's default is none)",
        "trainer.max_epochs": "conf/asr.yaml: the recorded default run's 15 epochs",
        "logger": "conf/logger/default.yaml: the CSV and TensorBoard loggers",
        "data.name": "conf/data/speech_synth.yaml names the corpus",
        "features.sample_rate": "conf/features/mfcc.yaml: ${data.sample_rate}, whatever the data",
        "augment": "conf/augment/none.yaml: no waveform augmentation by default (enabled: false)",
        "optim": "conf/optim/onecycle.yaml: the optimiser and schedule written out (equal to PRESETS, tested below)",
    },
    "caption": {
        "paths.root_dir": "conf/paths: the launch directory (an interpolation)",
        "paths.data_dir": "conf/paths: under the launch directory",
        "paths.output_dir": "conf/paths: under the launch directory",
        "trainer.gradient_clip_val": "conf/trainer/default.yaml: clip at 1.0 (Lightning's default is none)",
        "trainer.max_epochs": "conf/caption.yaml: the recorded default run's 6 epochs",
        "logger": "conf/logger/default.yaml: the CSV and TensorBoard loggers",
        "resilience.checkpoint_every_n_steps": "conf/caption.yaml: batch 16, every 3200 images",
        "data.name": "conf/data/scenes.yaml names the corpus",
        "data.batch_size": "conf/data/scenes.yaml: ${smoke:16,64}, the smoke run keeps 64",
        "encoder.output_stride": "conf/encoder/resnet18.yaml: an 8x8 grid on the 64x64 scenes",
        "encoder.hue_pool": "conf/encoder/resnet18.yaml: shape apart from colour, for training from scratch",
        "encoder.colour_channels": "conf/encoder/resnet18.yaml: the colour path that goes with hue_pool",
        "model.repeat_words": "conf/caption.yaml: the shape words of the embedded scenes",
        "optim": "conf/optim/warmup_cosine.yaml: the captioner's optimiser and schedule (equal to PRESETS, below)",
    },
}
# the library classes whose defaults the command line used to disagree with (issue 16): checked by name too
LIBRARY = {
    "asr": {"features": FeatureConfig, "model": ModelConfig, "decode": DecodeConfig},
    "caption": {"encoder": EncoderConfig, "decoder": AttentionDecoderConfig, "model": CaptionModelConfig},
}


@pytest.fixture(scope="module")
def hydra_conf() -> Iterator[None]:
    register()  # the schemas the YAML files start from
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        yield


def _default(schema: type, name: str) -> Any:
    f = next(f for f in dataclasses.fields(schema) if f.name == name)
    value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    return OmegaConf.to_container(OmegaConf.structured(value)) if dataclasses.is_dataclass(value) else value


def _leaves(node: DictConfig, prefix: str = "", given: dict | None = None) -> Iterator[tuple[str, Any, Any]]:
    """(key, value, default) of every leaf under a schema, unresolved (so ${...} stays text). ``given``: the
    defaults a parent field's own default gives this node (e.g. the objective of each pipeline)."""
    schema = OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(schema):
        return
    for name in node.keys():
        key, raw = f"{prefix}{name}", node._get_node(name)
        default = given[name] if given is not None and name in given else _default(schema, str(name))
        if (
            isinstance(raw, DictConfig)
            and not raw._is_none()
            and dataclasses.is_dataclass(OmegaConf.get_type(raw))
        ):
            yield from _leaves(raw, f"{key}.", default if isinstance(default, dict) else None)
            continue
        value = OmegaConf.to_container(raw) if isinstance(raw, DictConfig) else raw._value()
        yield key, value, default


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("pipeline", ["asr", "caption"])
def test_composed_default_equals_the_dataclass_defaults(hydra_conf: None, pipeline: str) -> None:
    cfg = compose(pipeline)
    differ, restated = [], []
    for key, value, default in _leaves(cfg):
        top = key.split(".")[0]
        same = _plain(value) == _plain(default)
        on_purpose = key in ON_PURPOSE[pipeline] or top in ON_PURPOSE[pipeline]
        if not same and not on_purpose:
            differ.append(f"{key}={value!r} (default {default!r})")
        if same and key in ON_PURPOSE[pipeline]:
            restated.append(f"{key}={value!r}: listed as an override but equal to the default")
    assert not differ, (
        "composed values that differ from their dataclass default without a reason: " + "; ".join(differ)
    )
    assert not restated, "; ".join(restated)


@pytest.mark.parametrize("pipeline", ["asr", "caption"])
def test_library_classes_give_the_command_line_defaults(hydra_conf: None, pipeline: str) -> None:
    """Calling the library gives the model the command line trains (n_mfcc, sizes, learning rates, …)."""
    cfg = OmegaConf.to_container(compose(pipeline), resolve=False)
    assert isinstance(cfg, dict)
    for group, cls in LIBRARY[pipeline].items():
        for f in dataclasses.fields(cls):
            key = f"{group}.{f.name}"
            if key in ON_PURPOSE[pipeline] or f.name not in cfg[group]:
                continue
            assert _plain(cfg[group][f.name]) == _plain(getattr(cls(), f.name)), key


def test_restating_a_default_is_caught(hydra_conf: None) -> None:
    """The control: an override listed on purpose that equals the default is reported (what a YAML file that
    restates a default looks like to the first test)."""
    cfg = compose("caption", overrides=["encoder.output_stride=32"])
    leaves = {k: (v, d) for k, v, d in _leaves(cfg)}
    assert leaves["encoder.output_stride"] == (32, 32)  # listed on purpose, yet equal: reported as restated
    wrong = {k: (v, d) for k, v, d in _leaves(compose("asr", overrides=["model.hidden_size=160"]))}
    assert wrong["model.hidden_size"] == (160, 128)  # an unlisted difference: the first test would fail on it


def _keys(node: Any, prefix: str) -> Iterator[str]:
    for k, v in node.items_ex(resolve=False):
        if k in ("defaults", "_target_"):
            continue
        if isinstance(v, DictConfig) and f"{prefix}{k}" not in ("logger",):
            yield from _keys(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}"


@pytest.mark.parametrize("pipeline", ["asr", "caption"])
def test_yaml_files_set_only_the_listed_overrides(pipeline: str) -> None:
    """A key written in one of the default config's YAML files is an override on purpose (listed above), or the
    name of the option's own object; a default restated in YAML fails here even when its value is right."""
    stray = []
    for name, package in FILES[pipeline].items():
        for key in _keys(OmegaConf.load(ROOT / "conf" / name), package):
            listed = key in ON_PURPOSE[pipeline] or key.split(".")[0] in ON_PURPOSE[pipeline]
            if not listed and key not in ("data.name", "encoder.name"):
                stray.append(f"{name}: {key}")
    assert not stray, "YAML keys that restate a default (or need a reason in ON_PURPOSE): " + ", ".join(stray)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_optim_file_holds_its_library_preset(hydra_conf: None, name: str) -> None:
    """conf/optim/<name>.yaml composes to ``PRESETS[name]`` (what a module built from Python trains with), for
    either pipeline; the pipelines' defaults pick the one the modules default to."""
    for pipeline in ("asr", "caption"):
        composed = OmegaConf.to_container(compose(pipeline, overrides=[f"optim={name}"]).optim)
        assert composed == dataclasses.asdict(PRESETS[name]), (pipeline, name)
    assert OmegaConf.to_container(compose("asr").optim) == dataclasses.asdict(OptimConfig())
    assert OmegaConf.to_container(compose("caption").optim) == dataclasses.asdict(PRESETS["warmup_cosine"])
