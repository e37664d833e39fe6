"""README.md is a map and docs/*.md the manual: every relative link leads to a file (and heading) that exists,
every ``python -m pipelines.asr|caption`` command they show composes against that pipeline's config (keys,
types, group options) and passes its value checks — or fails with the error its comment quotes — and README
stays short."""

from __future__ import annotations

import importlib.util
import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf

import pipelines._config as config
from pipelines._hydra import ConfigError
from tests._docs import README, ROOT, Command, anchors, doc_files, links, pipeline_commands

README_MAX_LINES = 300
# the line .ci/run runs (split over two lines there, with the wheel check in between)
TEST_COMMAND = (
    'python3 -m venv .venv && .venv/bin/pip install -q -e ".[dev]" && .venv/bin/ruff check . && '
    '.venv/bin/ruff format --check . && .venv/bin/python -m pytest -m "not slow"'
)
# Hydra's command-line flags that take a value, and those that do not
FLAGS_WITH_VALUE = {"--cfg", "-c", "--info", "-i", "--package", "-p", "-sc", "--shell-completion"}
FLAGS = {"-m", "--multirun", "--resolve", "--help", "-h", "--hydra-help"}
# optional Hydra plugins: the presets that need them, and the module each installs
PLUGIN_GROUPS = {"hydra/launcher", "hydra/sweeper"}
PLUGIN_MODULES = {
    "parallel": "hydra_plugins.hydra_joblib_launcher",
    "slurm": "hydra_plugins.hydra_submitit_launcher",
    "asr_optuna": "hydra_plugins.hydra_optuna_sweeper",
    "caption_optuna": "hydra_plugins.hydra_optuna_sweeper",
}


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# ------------------------------------------------------------------------------------------ the map and links
def test_readme_is_a_short_map_that_links_every_doc() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES, "README is the map; long sections belong in docs/"
    assert TEST_COMMAND in text.splitlines(), "README shows the test command .ci/run runs, byte for byte"
    ci = (ROOT / ".ci" / "run").read_text()
    first, rest = TEST_COMMAND.split(" && .venv/bin/ruff check", 1)
    assert first in ci and ".venv/bin/ruff check" + rest in ci
    linked = {(README.parent / t.split("#")[0]).resolve() for t in links(text)}
    for doc in doc_files()[1:]:
        assert doc.resolve() in linked, f"README does not link {_rel(doc)}"


def _link_cases() -> list[tuple[str, str]]:
    return [(_rel(doc), target) for doc in doc_files() for target in links(doc.read_text())]


@pytest.mark.parametrize(("doc", "target"), _link_cases())
def test_relative_links_lead_to_existing_files_and_headings(doc: str, target: str) -> None:
    if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: — not checked here
        return
    path, _, anchor = target.partition("#")
    file = (ROOT / doc).parent / unquote(path) if path else ROOT / doc
    assert file.exists(), f"{doc}: link to {target}: no such file {os.path.relpath(file, ROOT)}"
    if anchor and file.suffix == ".md":
        assert anchor in anchors(file.read_text()), f"{doc}: link to {target}: no such heading"


def test_every_documented_script_exists() -> None:
    """The scripts the docs run: ``python -m benchmarks.x``, ``python benchmarks/x.py``, ``bash benchmarks/x.sh``,
    ``python .ci/x.py``."""
    pattern = re.compile(
        r"(?:python3? -m ((?:benchmarks|pipelines)(?:\.\w+)+))|(?:(?:python3?|bash) ((?:benchmarks|\.ci)/[\w./]+))"
    )
    missing = []
    for doc in doc_files():
        for module, script in pattern.findall(doc.read_text()):
            file = ROOT / (module.replace(".", "/") + ".py" if module else script)
            if module and not file.is_file():  # a package run with -m: its __main__.py
                file = ROOT / module.replace(".", "/") / "__main__.py"
            if not file.is_file():
                missing.append(f"{_rel(doc)}: {module or script}")
    assert not missing, missing


# ------------------------------------------------------------------------------------------ pipeline commands
def _commands() -> list[Command]:
    """Every pipeline command of the docs, each distinct one once (README repeats the docs' commands)."""
    seen: dict[tuple[str, tuple[str, ...], str], Command] = {}
    for doc in doc_files():
        for cmd in pipeline_commands(doc):
            seen.setdefault((cmd.pipeline, cmd.args, cmd.comment), cmd)
    return list(seen.values())


COMMANDS = _commands()


def test_the_docs_show_commands_of_both_pipelines() -> None:
    """The parsing below finds what it should (a regex that silently found nothing would check nothing)."""
    everywhere = [cmd for doc in doc_files() for cmd in pipeline_commands(doc)]
    by_doc = {cmd.where.split(":")[0] for cmd in everywhere}
    assert {"README.md", "docs/asr.md", "docs/captioning.md", "docs/configuration.md"} <= by_doc
    in_readme = {cmd.pipeline for cmd in everywhere if cmd.where.startswith("README.md")}
    assert in_readme >= {"asr", "asr.test", "asr.transcribe", "asr.export", "asr.prepare"}
    assert in_readme >= {"caption", "caption.test", "caption.generate", "caption.export"}
    assert len(everywhere) >= 60 and len(COMMANDS) >= 40


@pytest.fixture(scope="module")
def hydra_conf() -> Iterator[None]:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        yield


def _overrides(cmd: Command) -> tuple[list[str], bool]:
    """The command's Hydra overrides and whether it is a multirun (``-m``); an unknown flag fails."""
    overrides, multirun, args = [], False, iter(cmd.args)
    for arg in args:
        flag = arg.split("=", 1)[0]
        if flag in FLAGS_WITH_VALUE:
            if "=" not in arg:
                next(args)
        elif flag in FLAGS:
            multirun |= flag in ("-m", "--multirun")
        elif arg.startswith("-"):
            pytest.fail(f"{cmd}: unknown flag {arg}")
        else:
            overrides.append(arg)
    return overrides, multirun


def _jobs(overrides: list[str], multirun: bool) -> list[list[str]]:
    """One override list per job: a sweep (``-m`` with ``a=1,2``) runs every combination."""
    if not multirun:
        return [overrides]
    choices = []
    for parsed in OverridesParser.create().parse_overrides(overrides):
        if parsed.is_sweep_override():
            key = parsed.get_key_element()
            choices.append([f"{key}={v}" for v in parsed.sweep_string_iterator()])
        else:
            choices.append([parsed.input_line])
    return [list(job) for job in itertools.product(*choices)]


def _plugin_presets(overrides: list[str]) -> list[str]:
    """The ``hydra/launcher=…`` / ``hydra/sweeper=…`` presets among ``overrides`` whose plugin is not
    installed (it is optional: ``.[sweep]``, ``.[optuna]``)."""
    missing = []
    for o in overrides:
        group, _, option = o.partition("=")
        if group in PLUGIN_GROUPS:
            module = PLUGIN_MODULES.get(option)
            assert module, f"{o}: a preset this test does not know; add its plugin to PLUGIN_MODULES"
            if not _has_module(module):
                missing.append(o)
    return missing


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _compose(pipeline: str, overrides: list[str]) -> DictConfig:
    """The job config of primary ``pipeline`` (``asr``, ``asr_test``, …), composed as the command line would
    (``paths.root_dir`` pinned to the checkout); every interpolation resolved."""
    needs_hydra = any(o.lstrip("+~").startswith("hydra") for o in overrides)
    cfg = compose(pipeline, overrides=[f"paths.root_dir={ROOT}", *overrides], return_hydra_config=needs_hydra)
    for key in cfg:
        if key != "hydra" and not OmegaConf.is_missing(cfg, key):  # ``???``: validate names it
            node = cfg[key]
            if isinstance(node, DictConfig):
                OmegaConf.to_container(node, resolve=True)
    return cfg


def _normal(text: str) -> str:
    return " ".join(text.split())


def _quotes(comment: str, message: str) -> bool:
    """Does ``comment`` quote ``message``? Its pieces between "…" appear in the message, in order."""
    pos, message = 0, _normal(message)
    for piece in (_normal(p) for p in comment.split("…")):
        found = message.find(piece, pos)
        if piece and found < 0:
            return False
        pos = max(pos, found + len(piece))
    return True


@pytest.mark.parametrize("cmd", COMMANDS, ids=[c.where for c in COMMANDS])
def test_documented_commands_compose_and_pass_the_value_checks(
    hydra_conf: None, cmd: Command, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``main`` checks before any work, minus the existence of input paths: the docs write placeholders
    (``ckpt=PATH``, ``/data/LibriSpeech``). A command whose comment quotes an error must fail with it:
    ``# config error: …`` from the value checks, ``# Could not override …`` / ``# Value '…`` from Hydra."""
    overrides, multirun = _overrides(cmd)
    missing_plugins = _plugin_presets(overrides)
    if missing_plugins:  # the preset needs its plugin; check the rest of the command without it
        for preset in missing_plugins:
            group, option = preset.split("=")
            assert (ROOT / "conf" / group / f"{option}.yaml").is_file(), f"{cmd}: no preset {preset}"
        plugin_keys = tuple(f"{p.split('=')[0].replace('/', '.')}." for p in missing_plugins)
        overrides = [o for o in overrides if o not in missing_plugins and not o.startswith(plugin_keys)]
    hydra_error = cmd.comment.startswith(("Could not override", "Value '"))
    value_error = cmd.comment.startswith("config error:")
    for job in _jobs(overrides, multirun):
        try:
            cfg = _compose(cmd.config, job)
        except ConfigCompositionException as exc:
            message = f"{exc} {exc.__cause__ or ''}"
            assert hydra_error and _quotes(cmd.comment, message), f"{cmd}: does not compose: {message}"
            continue
        assert not hydra_error, f"{cmd}: composes, but the docs say it fails with: {cmd.comment}"
        if value_error:
            with pytest.raises(ConfigError) as info:
                config.validate(cfg)
            expected = cmd.comment.removeprefix("config error:").strip()
            assert _quotes(expected, str(info.value)), f"{cmd}: fails with {info.value!r}"
            continue
        with monkeypatch.context() as m:
            m.setattr(config, "_path_problem", lambda key, value, meta: None)
            try:
                config.validate(cfg)
            except ConfigError as exc:
                pytest.fail(f"{cmd}: config error: {exc}")
