"""One entry point per task: ``python -m pipelines.<pipeline>`` trains, ``pipelines.<pipeline>.<task>`` does
one other task with a config of its own (conf/<pipeline>_<task>.yaml).

Each pipeline trains once here (a smoke run with overrides that only training has: trainer, model, logger);
the commands it prints are then run as pasted — they carry only what the target task's config accepts — and
the other entry points run end to end on its checkpoint. ``mode=`` is refused with a pointer, and a missing
required input (``???``) stops a task before any work, naming the key.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from tests._env import clean_env
from tests.audio.conftest import speechlike

ROOT = Path(__file__).resolve().parents[2]

# settings only a training run has: the printed test/transcribe/generate commands must leave them out
TRAIN_ONLY = {
    "asr": ["trainer.max_epochs=1", "model.hidden_size=16", "model.num_layers=1", "plot_utterances=0"],
    "caption": ["trainer.max_epochs=1", "decoder.hidden_size=16", "model.beam_size=2"],
}


def cli(module: str, *overrides: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``python -m pipelines.<module> …`` in a controlled environment."""
    cmd = [sys.executable, "-m", f"pipelines.{module}", *overrides]
    return subprocess.run(cmd, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=900)


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def printed(proc: subprocess.CompletedProcess[str]) -> dict[str, list[str]]:
    """The commands a training run printed at its end, by module: ``{"asr.test": [args…], …}``."""
    out = {}
    for line in proc.stdout.splitlines():
        if line.strip().startswith("python -m pipelines."):
            args = shlex.split(line.strip())
            out[args[2].removeprefix("pipelines.")] = args[3:]
    return out


def metrics(run: Path) -> dict[str, float]:
    return json.loads((run / "metrics.json").read_text())


@pytest.fixture(scope="module", params=["asr", "caption"])
def trained(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path, dict]:
    """(pipeline, run dir, printed commands) of one smoke training run per pipeline."""
    pipeline: str = request.param
    run = tmp_path_factory.mktemp(pipeline) / "train"
    data = tmp_path_factory.getbasetemp() / "data"
    proc = ok(
        cli(pipeline, "debug=smoke", "logger=none", f"paths.data_dir={data}", f"hydra.run.dir={run}",
            *TRAIN_ONLY[pipeline])
    )  # fmt: skip
    assert (run / f"{pipeline}.log").is_file()  # the log file is named after the task's config
    return pipeline, run, printed(proc)


def test_printed_commands_name_the_task_and_only_its_keys(trained: tuple[str, Path, dict]) -> None:
    pipeline, _, commands = trained
    other, placeholder = (
        ("transcribe", "audio_dir=DIR") if pipeline == "asr" else ("generate", "image_dir=DIR")
    )
    assert set(commands) == {f"{pipeline}.test", f"{pipeline}.{other}"}
    test, use = commands[f"{pipeline}.test"], commands[f"{pipeline}.{other}"]
    assert "debug=smoke" in test and use[-1] == placeholder and any(a.startswith("ckpt=") for a in use)
    assert "debug=smoke" not in use  # transcribe/generate have no data, so no debug group
    for args in (test, use):
        assert not {a.split("=")[0] for a in args} & {
            "logger",
            *(o.split("=")[0] for o in TRAIN_ONLY[pipeline]),
        }
        assert not [a for a in args if a.startswith("mode=")]


def _folder(pipeline: str, root: Path) -> Path:
    """A folder for transcribe (two audio files) or generate (two images)."""
    root.mkdir()
    if pipeline == "asr":
        sf.write(root / "a.wav", speechlike(1.0), 16000)
        sf.write(root / "b.wav", speechlike(2.0), 16000)
    else:
        rng = np.random.default_rng(0)
        for name in ("a.png", "b.jpg"):
            Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(root / name)
    return root


def test_printed_transcribe_or_generate_command_runs_with_a_folder(
    trained: tuple[str, Path, dict], tmp_path: Path
) -> None:
    pipeline, _, commands = trained
    task = "transcribe" if pipeline == "asr" else "generate"
    folder = _folder(pipeline, tmp_path / "in")
    args = [a.replace("=DIR", f"={folder}") for a in commands[f"{pipeline}.{task}"]]
    extra = [] if pipeline == "asr" else ["generate.num_workers=0"]
    ok(cli(f"{pipeline}.{task}", *args, *extra, f"hydra.run.dir={tmp_path / 'run'}"))
    rows = (tmp_path / "run" / ("transcripts.jsonl" if pipeline == "asr" else "captions.jsonl")).read_text()
    assert len(rows.splitlines()) == 2 and (tmp_path / "run" / f"{pipeline}_{task}.log").is_file()


def test_prepare_entry_point(tmp_path: Path) -> None:
    d = tmp_path / "LS" / "dev-clean" / "84" / "121"
    d.mkdir(parents=True)
    sf.write(d / "84-121-0000.flac", speechlike(0.5), 16000, format="FLAC")
    (d / "84-121.trans.txt").write_text("84-121-0000 HELLO THERE\n")
    run = tmp_path / "run"
    ok(cli("asr.prepare", f"data.root={tmp_path / 'LS'}", f"paths.data_dir={tmp_path / 'data'}",
           f"hydra.run.dir={run}"))  # fmt: skip
    assert (tmp_path / "data" / "librispeech" / "dev-clean.jsonl").is_file()
    assert metrics(run)["prepare/dev-clean"] == 1 and (run / "asr_prepare.log").is_file()


@pytest.mark.parametrize(
    ("module", "args", "pointer"),
    [
        ("asr", ["mode=test", "ckpt=x.ckpt"], "mode= is gone: use python -m pipelines.asr.test ckpt=PATH"),
        ("asr", ["debug=smoke", "mode=transcribe"], "use python -m pipelines.asr.transcribe ckpt=PATH audio_dir=DIR"),
        ("asr", ["+mode=prepare"], "use python -m pipelines.asr.prepare data=librispeech data.root=DIR"),
        ("asr", ["-m", "mode=export,test"], "use python -m pipelines.asr.export ckpt=PATH"),
        ("asr", ["mode=train"], "mode= is gone: use python -m pipelines.asr"),
        ("caption", ["mode=generate"], "use python -m pipelines.caption.generate ckpt=PATH image_dir=DIR"),
        ("caption", ["mode=test"], "use python -m pipelines.caption.test ckpt=PATH"),
        ("caption", ["mode=transcribe"], "use python -m pipelines.caption.test | python -m pipelines.caption.generate"),
    ],
)  # fmt: skip
def test_mode_is_refused_with_a_pointer(
    module: str, args: list[str], pointer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """What ``python -m pipelines.<module>`` does with ``argv`` before Hydra reads it (in this process; the
    command line itself is the next test)."""
    from pipelines._hydra import refuse_mode

    with pytest.raises(SystemExit) as info:
        refuse_mode(module, args)
    err = capsys.readouterr().err
    assert info.value.code == 1 and err.strip().splitlines() == [err.strip()] and pointer in err


def test_mode_on_the_command_line_exits_1_before_any_work(tmp_path: Path) -> None:
    proc = cli("asr", "mode=test", "ckpt=x.ckpt", cwd=tmp_path)
    assert (
        proc.returncode == 1
        and proc.stderr.strip() == "mode= is gone: use python -m pipelines.asr.test ckpt=PATH"
    )
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    ("module", "args", "message"),
    [
        ("asr.test", [], "config error: missing ckpt=PATH"),
        ("asr.transcribe", [], "config error: missing ckpt=PATH and audio_dir=DIR"),
        ("asr.export", [], "config error: missing ckpt=PATH"),
        ("asr.prepare", [], "config error: missing data.root=DIR"),
        ("caption.test", ["debug=smoke"], "config error: missing ckpt=PATH"),
        ("caption.generate", ["ckpt=x.ckpt"], "config error: missing image_dir=DIR"),
        ("caption.export", [], "config error: missing ckpt=PATH"),
    ],
)
def test_a_missing_required_input_names_the_key(module: str, args: list[str], message: str) -> None:
    """``validate``, the first line of each entry point, on the task's composed config (the command line's
    form of this message: tests/pipelines/test_asr.py::test_missing_arguments_fail_clearly)."""
    from hydra import compose, initialize_config_dir

    from pipelines._config import validate
    from pipelines._hydra import ConfigError

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(module.replace(".", "_"), overrides=args)
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    assert f"config error: {info.value}".startswith(message), info.value


def test_printed_commands_carry_what_the_target_accepts_and_the_data_an_experiment_chose() -> None:
    """An experiment picks data=librispeech: the printed test command selects it itself (the experiment, with
    its model and trainer keys, is no key of the test config); transcribe has no data group."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from pipelines._config import TASKS

    overrides = ["+experiment=asr_librispeech", "debug=smoke", "trainer.max_epochs=3", "decode.beam_size=4"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("asr", overrides=overrides, return_hydra_config=True)
    saved = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(cfg)
    try:
        assert TASKS["asr_test"].command("a.ckpt") == (
            "python -m pipelines.asr.test debug=smoke decode.beam_size=4 data=librispeech ckpt=a.ckpt"
        )
        printed = TASKS["asr_transcribe"].command("a.ckpt", "audio_dir=DIR")
        assert printed == "python -m pipelines.asr.transcribe decode.beam_size=4 ckpt=a.ckpt audio_dir=DIR"
    finally:
        HydraConfig.instance().cfg = saved
