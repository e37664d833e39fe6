"""Every required dependency installs from binary wheels on every supported Python and platform.

The required dependencies are ``[project].dependencies`` of pyproject.toml and, recursively, theirs, as
the installed distributions declare them, with each environment marker evaluated for the target. For each
(CPython version, platform) pair, every package of that tree must have a non-yanked wheel on PyPI whose
version meets the specifier, whose Requires-Python admits the target and whose tags the target accepts
(the tag rules are pip's own, from ``packaging.tags``). A pair fails naming each package without one.
This is the one CI step that needs the package index.

Why not ``pip install --dry-run --platform …``: pip evaluates environment markers for the machine it runs
on (so it asks for CUDA wheels on macOS and fails), and it downloads each wheel it considers (torch alone
is 0.5 GB per pair), which took 200 s for the 12 pairs. This reads PyPI's JSON index (PEP 691) once per
package instead.

Exceptions, each a pure-Python source distribution that pip builds without a compiler, listed so that
nothing else slips through: ``antlr4-python3-runtime`` (omegaconf and hydra-core pin 4.9.*, which PyPI
has only as an sdist).

Usage: ``python .ci/check_wheels.py [--python 3.13 ...] [--platform macosx_14_0_arm64 ...] [--also PKG ...]``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import re
import sys
import time
import tomllib
import urllib.request
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

PYTHONS = ("3.11", "3.12", "3.13", "3.14")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "macosx_14_0_arm64")
INDEX = "https://pypi.org/simple"
PURE_SDISTS = {"antlr4-python3-runtime"}


def platform_tags(platform: str) -> list[str]:
    """The wheel platform tags a machine of ``platform`` accepts (pip takes only the tags it is given):
    manylinux_2_28 also takes manylinux_2_17..2_27 and manylinux2014; macOS 14 on arm64 takes 11.0..14.0
    arm64 and universal2 builds back to 10.9."""
    if m := re.fullmatch(r"manylinux_2_(\d+)_(\w+)", platform):
        glibc, arch = int(m[1]), m[2]
        return [f"manylinux_2_{v}_{arch}" for v in range(glibc, 16, -1)] + [f"manylinux2014_{arch}"]
    if m := re.fullmatch(r"macosx_(\d+)_0_arm64", platform):
        tags = [f"macosx_{v}_0_{a}" for v in range(int(m[1]), 10, -1) for a in ("arm64", "universal2")]
        return tags + [f"macosx_10_{v}_universal2" for v in range(16, 8, -1)]
    raise ValueError(f"unknown platform {platform}")


def marker_env(python: str, platform: str) -> dict[str, str]:
    """The environment-marker values of CPython ``python`` on ``platform``."""
    env = default_environment()
    mac = platform.startswith("macosx")
    machine = "arm64" if mac else "x86_64" if platform.endswith("x86_64") else "aarch64"
    env.update(
        python_version=python, python_full_version=f"{python}.0", implementation_name="cpython",
        platform_python_implementation="CPython", os_name="posix", platform_machine=machine,
        sys_platform="darwin" if mac else "linux", platform_system="Darwin" if mac else "Linux",
    )  # fmt: skip
    return env


def closure(roots: list[str], env: dict[str, str]) -> dict[str, str]:
    """{canonical name: specifier} of ``roots`` and every dependency they pull in under ``env`` (read from
    the installed distributions; a root's specifier comes from pyproject, others are unconstrained)."""
    out: dict[str, str] = {}
    todo = [Requirement(r) for r in roots]
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
            continue
        name = canonicalize_name(req.name)
        if name in out:
            continue
        out[name] = str(req.specifier)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue  # not installed here (another platform's dependency): checked, not followed
        todo += [Requirement(r) for r in requires]
    return out


def wheel_files(name: str) -> list[dict]:
    """The files PyPI lists for ``name`` (PEP 691 JSON)."""
    req = urllib.request.Request(
        f"{INDEX}/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.load(resp)["files"]


def best_wheel(files: list[dict], spec: str, python: str, platform: str) -> str | None:
    """The newest wheel file name among ``files`` that CPython ``python`` on ``platform`` installs."""
    py = tuple(int(x) for x in python.split("."))
    plats = platform_tags(platform)
    accepted = {*cpython_tags(py, platforms=plats), *compatible_tags(py, f"cp{py[0]}{py[1]}", plats)}
    specifier = SpecifierSet(spec)
    best: tuple[Version, str] | None = None
    for f in files:
        fn = f["filename"]
        if not fn.endswith(".whl") or f.get("yanked"):
            continue
        _, version, _, tags = parse_wheel_filename(fn)
        if version not in specifier or not tags & accepted:
            continue
        needs = f.get("requires-python")
        if needs and Version(f"{python}.0") not in SpecifierSet(needs):
            continue
        if best is None or version > best[0]:
            best = (version, fn)
    return best[1] if best else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", nargs="*", default=list(PYTHONS))
    parser.add_argument("--platform", nargs="*", default=list(PLATFORMS))
    parser.add_argument("--also", nargs="*", default=[], help="more requirements, e.g. an optional extra's")
    args = parser.parse_args()
    t0 = time.time()
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    roots = pyproject["project"]["dependencies"] + args.also
    pairs = {(py, plat): closure(roots, marker_env(py, plat)) for py in args.python for plat in args.platform}
    names = sorted({n for pkgs in pairs.values() for n in pkgs} - PURE_SDISTS)
    with cf.ThreadPoolExecutor(max_workers=16) as pool:
        files = dict(zip(names, pool.map(wheel_files, names), strict=True))
    failed = 0
    for (py, plat), pkgs in pairs.items():
        missing = [f"{n}{s}" for n, s in sorted(pkgs.items())
                   if n not in PURE_SDISTS and best_wheel(files[n], s, py, plat) is None]  # fmt: skip
        if missing:
            failed += 1
            print(f"NO WHEEL on CPython {py} / {plat}: {', '.join(missing)}")
    sizes = sorted({len(p) for p in pairs.values()})
    print(
        f"wheel check: {len(pairs) - failed}/{len(pairs)} Python/platform pairs find a wheel for every "
        f"required package ({sizes[0]}–{sizes[-1]} packages; pure-Python sdists allowed: "
        f"{', '.join(sorted(PURE_SDISTS))}; {time.time() - t0:.0f} s)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
