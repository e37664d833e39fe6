"""A path printed in a pipeline's command (``ckpt=…``) reads back through a POSIX shell and Hydra 1.3 as the
very same path, whatever characters it holds; an unquoted ``=`` is what Hydra rejects. (A one-key config of
the test's own: the quoting is Hydra's grammar, not the pipelines' configs; the printed command of a real
run is run by tests/training/test_kill_resume.py.)"""

from __future__ import annotations

import shlex
from collections.abc import Iterator

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import OverrideParseException

from pipelines._hydra import hydra_value, shell_arg

PATHS = [
    "/runs/a/checkpoints/best.ckpt",  # plain: printed as is
    "outputs/run=1/checkpoints/best-epoch=14.ckpt",  # the old checkpoint names
    "/data/my runs/a,b/[1]{2}(3).ckpt",  # spaces, a comma (a sweep in Hydra), brackets
    "/data/it's/x.ckpt",  # a single quote
    '/data/say "hi"/x.ckpt',  # double quotes
    "/data/$HOME/`x`/!x.ckpt",  # shell expansions that must not happen
    "/data/${oops}/x.ckpt",  # an OmegaConf interpolation that must stay text
    "/data/back\\slash\\",  # backslashes, one at the end
    "/données/é.ckpt",  # non-ASCII
    "1e5",  # Hydra would read a float
    "true",  # ... or a bool
]


@pytest.fixture(scope="module")
def hydra_conf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    conf = tmp_path_factory.mktemp("conf")
    (conf / "job.yaml").write_text("ckpt: null\n")
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        yield


@pytest.mark.parametrize("path", PATHS)
def test_printed_path_reads_back_through_shell_and_hydra(hydra_conf: None, path: str) -> None:
    word = shell_arg(f"ckpt={hydra_value(path)}")
    (arg,) = shlex.split(word)  # what the shell hands to python
    assert compose("job", overrides=[arg]).ckpt == path


def test_documented_quoting_and_what_fails(hydra_conf: None) -> None:
    # docs/recovery.md: ckpt="'path=with=equals.ckpt'" — the shell removes the double quotes, Hydra the single ones
    (arg,) = shlex.split("""ckpt="'path=with=equals.ckpt'\"""")
    assert compose("job", overrides=[arg]).ckpt == "path=with=equals.ckpt"
    assert shell_arg(f"ckpt={hydra_value('path=with=equals.ckpt')}") == """ckpt="'path=with=equals.ckpt'\""""
    with pytest.raises(OverrideParseException, match="mismatched input '='"):
        compose("job", overrides=["ckpt=path=with=equals.ckpt"])
