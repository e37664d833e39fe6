"""The note on non-ASCII paths in docs/recovery.md: Hydra refuses them unquoted and takes them quoted as it
shows, and the commands a run prints quote them."""

from __future__ import annotations

import shlex

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from pipelines._hydra import paste_command

PATHS = ["/data/école/last.ckpt", "/data/音声/best-epoch01.ckpt", "/home/jürgen/clips"]


@pytest.mark.parametrize("path", PATHS)
def test_non_ascii_paths_need_hydra_quotes(path: str) -> None:
    parser = OverridesParser.create()
    with pytest.raises(HydraException):
        parser.parse_overrides([f"ckpt={path}"])
    (arg,) = shlex.split(f"ckpt=\"'{path}'\"")  # as docs/recovery.md writes it: shell's quotes, Hydra's
    assert parser.parse_overrides([arg])[0].value() == path
    printed = paste_command("asr.test", {"ckpt": path})
    (override,) = [a for a in shlex.split(printed) if a.startswith("ckpt=")]
    assert parser.parse_overrides([override])[0].value() == path
