"""Hydra configs: every primary config, group option and experiment composes against its schema; bad overrides
fail at start with the promised messages (Hydra's for keys and types, ours for values, paths and the keys each
task needs)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf

from pipelines._config import (
    TASKS,
    ASRConfig,
    AttentionDecoderConfig,
    CaptionConfig,
    FlickrDataConfig,
    ImportedDataConfig,
    SpeechSynthDataConfig,
    validate,
)
from pipelines._hydra import ConfigError
from tests._env import clean_env

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
PRIMARY = {"asr": ASRConfig, "caption": CaptionConfig}
# the groups each primary config selects from (the others belong to the other pipeline)
GROUPS = {
    "asr": ("data", "features", "model", "decode", "trainer", "logger"),
    "caption": ("data", "encoder", "decoder", "trainer", "logger"),
}
ASR_DATA = {"speech_synth", "speech_manifest", "librispeech", "ljspeech", "commonvoice"}


@pytest.fixture(scope="module")
def hydra_conf() -> Iterator[None]:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield


def _compose(name: str, *overrides: str, root: Path | None = None) -> DictConfig:
    # paths.root_dir is the launch directory; pin it so paths in the composed configs are predictable
    return compose(name, overrides=[f"paths.root_dir={root or ROOT}", *overrides])


def _options(group: str, pipeline: str) -> list[str]:
    names = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
    if group == "data":
        names = [n for n in names if (n in ASR_DATA) == (pipeline == "asr")]
    return names


CASES = [(p, g, o) for p in PRIMARY for g in GROUPS[p] for o in _options(g, p)]


@pytest.mark.parametrize(("pipeline", "group", "option"), CASES, ids=[f"{p}-{g}={o}" for p, g, o in CASES])
def test_every_group_option_composes_against_the_schema(
    hydra_conf: None, pipeline: str, group: str, option: str
) -> None:
    cfg = _compose(pipeline, f"{group}={option}")
    assert OmegaConf.get_type(cfg) is PRIMARY[pipeline]
    container = OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert isinstance(container, dict) and "mode" not in container
    if group in ("data", "decode", "decoder", "model", "features", "encoder"):
        assert OmegaConf.get_type(cfg[group]) is not dict, f"{group}={option} has no schema"


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_config_composes_with_only_its_own_keys(hydra_conf: None, name: str) -> None:
    """Each entry point's primary config composes against its schema, holds only the keys and groups of its
    task (no mode, no trainer outside training) and gives its required inputs as ``???``."""
    task = TASKS[name]
    cfg = _compose(name)
    assert OmegaConf.get_type(cfg) is task.schema
    assert "mode" not in cfg and (("trainer" in cfg) == (task.kind == "train"))
    assert set(cfg.keys()) <= {f.name for f in __import__("dataclasses").fields(task.schema)}
    if task.kind not in ("train", "prepare"):
        assert OmegaConf.is_missing(cfg, "ckpt")
    for key in cfg:
        if key != "ckpt" and not OmegaConf.is_missing(cfg, key) and isinstance(cfg[key], DictConfig):
            OmegaConf.to_container(cfg[key], resolve=True)  # every interpolation resolves
    if "debug" in task.groups:  # debug=smoke sets only data.smoke: every config with debug has data
        assert _compose(name, "debug=smoke").data.smoke is True


@pytest.mark.parametrize("name", sorted(TASKS))
def test_tasks_list_the_groups_of_their_primary(name: str) -> None:
    """TASKS (what a printed command may carry to a task) names the groups the primary's defaults list picks,
    plus experiment (added with +experiment=) for training."""
    task = TASKS[name]
    assert set(task.options()) <= set(task.groups)
    assert set(task.groups) - set(task.options()) <= ({"experiment"} if task.kind == "train" else set())
    assert name == task.module.replace(".", "_")
    module = task.module.replace(".", "/")
    entry = ROOT / "pipelines" / (f"{module}/__main__.py" if task.kind == "train" else f"{module}.py")
    assert entry.is_file(), entry


def test_unknown_keys_of_another_task_are_refused(hydra_conf: None) -> None:
    """A test config has no trainer and no mode; Hydra names the key."""
    for name, override in (
        ("asr_test", "trainer.max_epochs=3"),
        ("asr", "mode=test"),
        ("caption_test", "model.beam_size=2"),
    ):
        with pytest.raises(ConfigCompositionException) as info:
            _compose(name, override)
        assert override.split("=")[0].split(".")[0] in f"{info.value} {info.value.__cause__}"


def test_defaults_pass_validation_and_options_get_their_own_schema(hydra_conf: None) -> None:
    asr, caption = _compose("asr"), _compose("caption")
    validate(asr)
    validate(caption)
    assert OmegaConf.get_type(asr.data) is SpeechSynthDataConfig
    assert OmegaConf.get_type(caption.decoder) is AttentionDecoderConfig
    assert OmegaConf.get_type(_compose("asr", "data=librispeech").data) is ImportedDataConfig
    assert OmegaConf.get_type(_compose("caption", "data=flickr").data) is FlickrDataConfig
    # the sweep example names real keys
    cfg = _compose("asr", "model.hidden_size=64", "optim.lr=1e-3")
    assert cfg.model.hidden_size == 64 and cfg.optim.lr == pytest.approx(1e-3)
    # the importers keep speech_manifest's values under their own schema
    libri = _compose("asr", "data=librispeech")
    assert libri.data.num_workers == 2 and libri.data.max_frames == 20000 and libri.data.max_duration == 17.0


@pytest.mark.parametrize(
    ("pipeline", "experiment", "data"),
    [("asr", "asr_librispeech", "speech_synth"), ("caption", "caption_coco", "scenes")],
)
def test_experiments_compose_full_and_smoke(
    hydra_conf: None, pipeline: str, experiment: str, data: str
) -> None:
    full = _compose(pipeline, f"+experiment={experiment}")
    smoke = _compose(pipeline, f"+experiment={experiment}", "debug=smoke", f"data={data}")
    for cfg in (full, smoke):
        assert OmegaConf.get_type(cfg) is PRIMARY[pipeline]
        OmegaConf.to_container(cfg, resolve=True)
    validate(smoke)  # runnable as is on the embedded data
    assert smoke.data.name == data and smoke.trainer.accelerator == "cpu" and smoke.trainer.max_epochs == 2
    if pipeline == "asr":
        assert full.data.name == "librispeech"
        assert (full.model.hidden_size, full.model.num_layers, full.model.bidirectional) == (1024, 5, True)
        assert full.trainer.accelerator == "gpu" and full.trainer.precision == "bf16-mixed"
        assert smoke.model.hidden_size <= 64 and smoke.model.num_layers <= 2
    else:
        assert full.data.name == "karpathy" and full.encoder.name == "resnet50"
        assert full.decoder.variant == "attention" and full.decoder.hidden_size == 512
        assert full.encoder.weights == "IMAGENET1K_V2" and smoke.encoder.weights is None
        assert smoke.decoder.hidden_size <= 64


@pytest.mark.parametrize(
    ("pipeline", "override", "words"),
    [
        ("asr", "model.hidden_sise=64", ["model.hidden_sise"]),  # unknown key
        ("caption", "decoder.attention_dimm=3", ["decoder.attention_dimm"]),
        ("asr", "model.hidden_size=big", ["model.hidden_size", "Integer"]),  # wrong type
        ("caption", "optim.lr=fast", ["optim.lr", "float"]),
        ("asr", "data.smoke=maybe", ["data.smoke", "bool"]),
        ("asr", "data=nope", ["data", "nope"]),  # no such option
    ],
)
def test_unknown_keys_and_wrong_types_fail_while_composing(
    hydra_conf: None, pipeline: str, override: str, words: list[str]
) -> None:
    with pytest.raises(ConfigCompositionException) as info:
        _compose(pipeline, override)
    message = f"{info.value} {info.value.__cause__ or ''}"
    for word in words:
        assert word.lower() in message.lower(), message


@pytest.mark.parametrize(
    ("pipeline", "overrides", "expected"),
    [
        ("asr", ["model.hidden_size=-1"], "model.hidden_size=-1 must be > 0"),
        ("asr", ["model.dropout=1.5"], "model.dropout=1.5 must be in [0, 1]"),
        ("asr", ["data.val_fraction=-0.1"], "data.val_fraction=-0.1 must be in [0, 1]"),
        ("caption", ["decoder.dropout=2"], "decoder.dropout=2.0 must be in [0, 1]"),
        ("caption", ["data.batch_size=0"], "data.batch_size=0 must be > 0"),
        ("asr_test", [], "missing ckpt=PATH"),
        ("asr_transcribe", [], "missing ckpt=PATH and audio_dir=DIR"),
        ("asr_export", [], "missing ckpt=PATH"),
        ("caption_test", [], "missing ckpt=PATH"),
        ("caption_generate", [], "missing ckpt=PATH and image_dir=DIR"),
        ("caption_export", [], "missing ckpt=PATH"),
        ("asr_prepare", [], "missing data.root=DIR"),
        ("asr_prepare", ["data=ljspeech"], "missing data.root=DIR"),
        ("asr_test", [f"ckpt={ROOT / 'README.md'}", "decode.beam_size=0"], "decode.beam_size=0 must be > 0"),
        (
            "asr_transcribe",
            [f"ckpt={ROOT / 'README.md'}", f"audio_dir={ROOT}", "chunk_s=0"],
            "chunk_s=0.0 must be > 0",
        ),
        ("asr", ["data=speech_manifest"], "data.train_manifest is not set"),
        ("asr", ["model.dropout=nan"], "model.dropout=nan must be a finite number"),
        (
            "asr",
            ["resilience.checkpoint_every_n_steps=-5"],
            "resilience.checkpoint_every_n_steps=-5 must be ≥ 0",
        ),
        ("caption", ["trainer=ddp", "trainer.num_nodes=0"], "trainer.num_nodes=0 must be > 0"),
        ("caption", ["seed=${nope}"], "seed: Interpolation key 'nope' not found"),
    ],
)
def test_bad_values_fail_with_one_line_naming_the_key(
    hydra_conf: None, pipeline: str, overrides: list[str], expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        validate(_compose(pipeline, *overrides))
    assert str(info.value).startswith(expected) and "\n" not in str(info.value)


def test_input_paths_must_exist(hydra_conf: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.ckpt"
    with pytest.raises(ConfigError, match=r"^ckpt=.*nope\.ckpt: no such file"):
        validate(_compose("asr_test", f"ckpt={missing}"))
    with pytest.raises(ConfigError, match=r"^ckpt=.*nope\.ckpt: no such file"):
        validate(_compose("asr", f"ckpt={missing}"))  # resume
    with pytest.raises(ConfigError, match=r"^ckpt=.*: not a file"):
        validate(_compose("caption_test", f"ckpt={tmp_path}"))
    ckpt = tmp_path / "m.ckpt"
    ckpt.write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"^audio_dir=.*: not a directory"):
        validate(_compose("asr_transcribe", f"ckpt={ckpt}", f"audio_dir={ckpt}"))
    validate(_compose("asr_transcribe", f"ckpt={ckpt}", f"audio_dir={tmp_path}"))
    with pytest.raises(ConfigError, match=r"^image_dir=.*: not a directory"):
        validate(_compose("caption_generate", f"ckpt={ckpt}", f"image_dir={ckpt}"))
    validate(_compose("caption_export", f"ckpt={ckpt}"))
    # relative paths resolve against the launch directory
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"data.test_manifest=.*test.jsonl.*: no such file"):
        validate(_compose("asr", "data=speech_manifest", "data.train_manifest=m.ckpt",
                          "data.val_manifest=m.ckpt", "data.test_manifest=test.jsonl", root=tmp_path))  # fmt: skip
    # the manifests of a public corpus are checked when training, not when preparing them
    with pytest.raises(ConfigError, match=r"^data.train_manifest=.*train-clean-100.jsonl.*: no such file"):
        validate(_compose("asr", "data=librispeech", root=tmp_path))
    validate(_compose("asr_prepare", "data=librispeech", f"data.root={tmp_path}", root=tmp_path))
    with pytest.raises(ConfigError, match=r"^data.root=.*nope: no such directory"):
        validate(_compose("asr_prepare", f"data.root={tmp_path / 'nope'}", root=tmp_path))
    with pytest.raises(ConfigError, match=r"^data.token_file=.*: no such file \(and 1 more problem\)"):
        validate(_compose("caption", "data=flickr", root=tmp_path))


def _cli(pipeline: str, *overrides: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    flags = [o for o in overrides if o.startswith("-")]
    rest = [o for o in overrides if not o.startswith("-")]
    cmd = [
        sys.executable,
        "-m",
        f"pipelines.{pipeline}",
        *flags,
        f"paths.output_dir={cwd / 'outputs'}",
        *rest,
    ]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("caller_env", [{}, {"HYDRA_FULL_ERROR": "1", "PYTHONWARNINGS": "error"}])
def test_command_line_errors_exit_nonzero_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caller_env: dict[str, str]
) -> None:
    """The same messages whatever the caller's shell holds (the CLI gets a controlled environment)."""
    for k, v in caller_env.items():
        monkeypatch.setenv(k, v)
    proc = _cli("asr", "model.dropout=1.5", f"paths.data_dir={tmp_path / 'data'}", cwd=tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == "config error: model.dropout=1.5 must be in [0, 1]"
    assert not (tmp_path / "data").exists()  # nothing was generated
    proc = _cli("caption", "decoder.hidden_sise=8", cwd=tmp_path)
    assert proc.returncode != 0 and "decoder.hidden_sise" in proc.stderr and "Traceback" not in proc.stderr


def test_cfg_job_and_defaults_tree(tmp_path: Path) -> None:
    proc = _cli("asr", "--cfg=job", "model.hidden_size=64", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    job = OmegaConf.create(proc.stdout)
    assert job.model.hidden_size == 64 and "optim" in job and "hydra" not in job
    proc = _cli("caption", "--info=defaults-tree", cwd=tmp_path)
    assert proc.returncode == 0 and "schema/caption/decoder/attention" in proc.stdout


@pytest.mark.parametrize(
    ("pipeline", "override", "plugin"),
    [
        ("asr", "hydra/launcher=parallel", "joblib"),
        ("caption", "hydra/launcher=slurm", "submitit"),
        ("asr", "hydra/sweeper=asr_optuna", "optuna"),
        ("caption", "hydra/sweeper=caption_optuna", "optuna"),
    ],
)
def test_launcher_and_sweeper_presets_need_only_their_plugin(
    hydra_conf: None, pipeline: str, override: str, plugin: str
) -> None:
    """The primary configs compose without the optional plugins (above); selecting a preset composes when its
    plugin is installed (pip install -e ".[sweep]" / ".[optuna]") and otherwise names what is missing."""
    try:
        cfg = compose(pipeline, overrides=[f"paths.root_dir={ROOT}", override], return_hydra_config=True)
    except ConfigCompositionException as exc:
        assert plugin in str(exc), str(exc)
    else:
        node = cfg.hydra.launcher if "launcher" in override else cfg.hydra.sweeper
        assert plugin in str(node._target_).lower()
