"""The writer of conf/'s shown values (pipelines/conf_values.py): what it reports and rewrites, what it keeps,
where its comments come from, and that the lines it writes never change a composed config."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from lstm_seq.audio.model import ModelConfig
from lstm_seq.settings import like, positive
from pipelines import _config
from pipelines._hydra import ConfigError
from pipelines.conf_values import COMMAND, CONF, Conf, differences, field_comment, own_text, value_text, write


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    """A copy of conf/ to change."""
    return Path(shutil.copytree(CONF, tmp_path / "conf"))


def _composed(conf: Path, jobs: list[tuple[str, list[str]]]) -> list[tuple[Any, str]]:
    """``(container, yaml)`` of each job composed from ``conf`` (the YAML keeps the key order), or
    ``(None, error)``."""
    out = []
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        for pipeline, overrides in jobs:
            try:
                cfg = compose(pipeline, overrides=["paths.root_dir=/R", *overrides])
            except ConfigCompositionException as exc:  # an option of the other pipeline: the same error
                out.append((None, str(exc)))
                continue
            out.append((OmegaConf.to_container(cfg, resolve=False), OmegaConf.to_yaml(cfg)))
    return out


def test_a_stale_value_is_reported_then_rewritten_and_own_lines_are_kept(conf: Path) -> None:
    """A file written before a default changed (here: hidden_size 100) fails the check with the file, the key,
    both values and the command; writing updates it and keeps every line marked '# this option'."""
    model, scenes = conf / "model" / "asr_bilstm.yaml", conf / "data" / "scenes.yaml"
    model.write_text(model.read_text().replace("hidden_size: 128  #", "hidden_size: 100  #"))
    own = "batch_size: ${smoke:32,64}  # this option: my batch"
    text = scenes.read_text()
    scenes.write_text(text.replace(next(s for s in text.splitlines() if s.startswith("batch_size:")), own))

    found = differences(conf)
    assert found[0] == "conf/model/asr_bilstm.yaml: hidden_size is 100 here; the writer writes 128"
    assert COMMAND in found[-1] and "# this option" in found[-1]
    assert len(found) == 2  # the own line of scenes.yaml is not a difference

    assert write(conf) == ["model/asr_bilstm.yaml"]
    assert model.read_text() == (CONF / "model" / "asr_bilstm.yaml").read_text()
    assert own in scenes.read_text().splitlines()
    assert differences(conf) == [] and write(conf) == []  # stable: a second run changes nothing


def test_generated_lines_change_no_composed_value(conf: Path) -> None:
    """conf/ as written composes exactly (values and key order) as the files' own lines alone (the header, the
    defaults list and the '# this option' lines): for each pipeline's default, the smoke run and every option
    of every group."""
    for rel in Conf(CONF).targets():
        (conf / rel).write_text(own_text((CONF / rel).read_text(), rel))
    assert "hidden_size" not in (conf / "model" / "asr_bilstm.yaml").read_text()
    jobs: list[tuple[str, list[str]]] = []
    for pipeline, (_, groups) in Conf(CONF).primaries.items():
        jobs += [(pipeline, []), (pipeline, ["debug=smoke"])]
        for group in groups:
            if group not in ("hydra", "debug", "paths", "logger"):
                jobs += [(pipeline, [f"{group}={p.stem}"]) for p in sorted((CONF / group).glob("*.yaml"))]
    before = _composed(CONF, jobs)
    assert len(jobs) > 40 and sum(c is not None for c, _ in before) > 25
    assert before == _composed(conf, jobs)


def test_a_new_group_is_found_and_its_option_adopted(conf: Path) -> None:
    """A group added to a primary's defaults list (here resilience/, which asr.yaml shows as a node) is found
    without a list to edit: its new option's values become its own lines, the schema's others are shown, and
    the primary no longer shows the group's keys. The composed config is the one the values give."""
    asr = conf / "asr.yaml"
    asr.write_text(asr.read_text().replace("  - _self_\n", "  - resilience: often\n  - _self_\n", 1))
    (conf / "resilience").mkdir()
    (conf / "resilience" / "often.yaml").write_text(
        "# Checkpoints more often.\ncheckpoint_every_n_steps: 10  # a fifth\n"
    )

    assert "resilience/often.yaml" in write(conf)
    lines = (conf / "resilience" / "often.yaml").read_text().splitlines()
    assert "checkpoint_every_n_steps: 10  # this option: a fifth" in lines
    assert [line for line in lines if line.startswith("max_consecutive_bad_batches: 10  # stop after")]
    assert not [
        line for line in (conf / "asr.yaml").read_text().splitlines() if line.startswith("resilience:")
    ]
    assert differences(conf) == []
    (new, _), (old, _) = _composed(conf, [("asr", [])]) + _composed(
        CONF, [("asr", ["resilience.checkpoint_every_n_steps=10"])]
    )
    assert new == old


def test_a_key_neither_shown_nor_marked_is_an_error(conf: Path) -> None:
    model = conf / "model" / "asr_bilstm.yaml"
    model.write_text(model.read_text() + "hiden_size: 3\n")
    with pytest.raises(ConfigError, match=r"conf/model/asr_bilstm\.yaml: hiden_size is not a key"):
        differences(conf)


def test_files_without_values_to_show_are_left_alone() -> None:
    """Groups with no schema (hydra, logger, debug, experiment) or no default to show (paths) keep their text."""
    targets = Conf(CONF).targets()
    assert {"asr.yaml", "caption.yaml", "model/asr_bilstm.yaml", "trainer/default.yaml"} <= set(targets)
    assert "model/asr_unilstm.yaml" in targets  # a _global_ option of the model group: shows model.*
    assert not [t for t in targets if t.split("/")[0] in ("paths", "hydra", "logger", "debug", "experiment")]


@dataclass
class _Toy:
    a: int = positive(1)  # after the field
    # above the field,
    # on two lines
    b: float = 0.5
    c: str = "x"  # inside a wrapped value
    d: int = like(ModelConfig, "hidden_size")
    e: int = 3  # type: ignore[assignment]  # after a pragma
    f: int = positive(2)


def test_comments_are_read_from_the_dataclass_source() -> None:
    assert [field_comment(_Toy, n) for n in "abcdef"] == [
        "after the field",
        "above the field, on two lines",
        "inside a wrapped value",
        "LSTM units per direction",  # copied with like(): the comment of ModelConfig.hidden_size
        "after a pragma",
        "",
    ]
    # the schemas made in pipelines/_config.py: their own fields, and those taken from a library class
    assert field_comment(_config.SpeechSynthDataConfig, "smoke_utterances") == "n_utterances with debug=smoke"
    assert field_comment(_config.SpeechSynthDataConfig, "n_utterances") == "total over the three splits"
    assert field_comment(_config.ASRModelConfig, "hidden_size") == "LSTM units per direction"
    lines = (CONF / "model" / "asr_bilstm.yaml").read_text().splitlines()
    assert "hidden_size: 128  # LSTM units per direction" in lines
    assert "num_layers: 2  # > 0" in lines  # no comment: the field's rule


@pytest.mark.parametrize(
    "value",
    [0.003, 1e-06, 100000.0, 20.0, float("inf"), 3, -1, True, None, "auto", "1e5", "true", "", "a # b",
     "${paths.data_dir}/x", "???", [0.88, 1.12], ["a,b", "c"], [], {"train": "x.txt"}],
)  # fmt: skip
def test_values_are_written_so_that_they_read_back(value: Any) -> None:
    text = value_text(value)
    back = OmegaConf.to_container(OmegaConf.create(f"k: {text}"), resolve=False)["k"]  # type: ignore[index]
    assert back == value and type(back) is type(value), text


def test_floats_are_written_as_python_writes_them() -> None:
    assert [value_text(v) for v in (3e-3, 1e-6, 0.1, 5e7)] == ["0.003", "1e-06", "0.1", "50000000.0"]
