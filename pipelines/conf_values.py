"""Show every value in conf/: write each option file's keys from the settings dataclasses, and check them.

A setting is defined once, on a dataclass field (its default, its rule and a one-line comment); the option files
under ``conf/`` show every value of their group, so ``conf/model/asr_bilstm.yaml`` answers "what is
``model.hidden_size``". This module writes those lines::

    python -m pipelines.conf_values           # rewrite the option files whose shown values are out of date
    python -m pipelines.conf_values --check   # list the differences, exit 1 when there are any

In an option file, a key line ending in ``# this option`` (``# this option: why``) is that file's own choice —
a value that differs from the default on purpose, an interpolation such as ``${data.sample_rate}`` — and is kept
as written, with the comment lines above it; own keys come first, in the file's order. Every other key is
written here, in the order of the dataclass, with the value the file's defaults list gives it (the schema's
default, or a parent option's value: ``features/logmel.yaml`` starts from ``mfcc``) and the field's comment
read from the dataclass source (or its rule, ``> 0``, when it has none). Change a default in the dataclass and
run this module: the shown lines follow, the own ones stay. A test (tests/pipelines/test_config_defaults.py)
fails, naming the file, the key and both values, while a file differs from what would be written.

Which files: the primary configs, one per task (``conf/asr.yaml``, ``conf/asr_test.yaml``, …,
``conf/caption_export.yaml``: their keys that are not groups, e.g. ``seed``, ``device``, ``resilience``) and
every option of a group that the primaries' schemas type with a dataclass (found from their defaults lists and
the ConfigStore, not from a list here). Files of groups without
a schema (``hydra``, ``logger``, ``debug``, ``experiment``) and of groups whose schema gives no default to show
(``paths``: every key is required) are left as they are.
"""

from __future__ import annotations

import argparse
import ast
import copy
import dataclasses
import functools
import inspect
import io
import json
import math
import re
import sys
import textwrap
import tokenize
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from pipelines._config import register
from pipelines._hydra import ConfigError

__all__ = ["CONF", "differences", "field_comment", "option_files", "own_text", "render", "write"]

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
COMMAND = "python -m pipelines.conf_values"
OWN = "# this option"  # the mark of a file's own line
NOTE = "# Shown values:"  # first words of the note the writer puts above the defaults list
WIDTH = 110  # as the code (pyproject.toml: ruff line-length)

# ------------------------------------------------------------------------------------------------- YAML text

KEY = re.compile(r"(?P<indent> *)(?P<key>[A-Za-z_][\w.-]*|'[^'\n]*'|\"[^\"\n]*\")[ \t]*:(?=[ \t]|$)")


def _is_text(line: str) -> bool:
    """Neither blank nor a comment line."""
    return bool(line.strip()) and not line.lstrip().startswith("#")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _split_comment(line: str) -> tuple[str, str]:
    """``(code, comment)`` of a YAML line: the comment starts at a ``#`` after a blank, outside quotes."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"" and (i == 0 or line[i - 1] in " :[{,"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip(), line[i:].rstrip()
    return line.rstrip(), ""


@dataclass
class Entry:
    """One key of a YAML mapping as a file writes it."""

    key: str
    lead: list[str]  # comment (and blank) lines above it
    lines: list[str]  # its key line, then the indented lines of its value
    children: list[Entry] = field(default_factory=list)  # the keys of a block mapping value
    own: bool = False  # its key line ends in "# this option"
    row: int = 0  # the key line's index in the file

    @property
    def marked(self) -> bool:
        """It, or a key below it, is the file's own."""
        return self.own or any(c.marked for c in self.children)


def _parse(lines: list[str], indent: int, where: str, start: int = 0) -> tuple[list[Entry], list[str]]:
    """The entries of a block mapping at ``indent`` (``lines`` begin at row ``start`` of the file) and the
    comment lines after the last one."""
    entries: list[Entry] = []
    pending: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not _is_text(line):
            pending.append(line)
            i += 1
            continue
        m = KEY.match(line)
        if m is None or len(m["indent"]) != indent:
            raise ConfigError(
                f"{where}:{start + i + 1}: cannot read {line.strip()!r} (a key at indent {indent}?)"
            )
        last = i
        for j in range(i + 1, len(lines)):
            s = lines[j]
            if _is_text(s):
                if _indent(s) < indent or (_indent(s) == indent and not s.lstrip().startswith("- ")):
                    break
                last = j
        block = lines[i + 1 : last + 1]
        code, comment = _split_comment(line)
        children: list[Entry] = []
        texts = [s for s in block if _is_text(s)]
        if not code[m.end() :].strip() and texts and KEY.match(texts[0]) and _indent(texts[0]) > indent:
            children, _ = _parse(block, _indent(texts[0]), where, start + i + 1)
        key = m["key"].strip("'\"")
        entries.append(Entry(key, pending, [line, *block], children, comment.startswith(OWN), start + i))
        pending = []
        i = last + 1
    return entries, pending


@dataclass
class Layout:
    """An option file split into the parts the writer keeps or writes."""

    package: str | None  # the "# @package" header's value
    header: list[str]  # comment lines above the defaults list, without the writer's note
    defaults: Entry | None
    entries: list[Entry]
    noted: bool  # the writer's note is there: the file has been written by the writer before


def _layout(text: str, where: str) -> Layout:
    lines = text.splitlines()
    first = next((i for i, s in enumerate(lines) if _is_text(s)), len(lines))
    head, note, noted = [], False, False
    for s in lines[:first]:
        note = s.startswith(NOTE) or (note and s.startswith("#"))
        noted |= note
        if not note:
            head.append(s)
    while head and not head[-1].strip():
        head.pop()
    package = next((s.split("@package", 1)[1].strip() for s in head if s.startswith("# @package")), None)
    entries, _tail = _parse(lines[first:], 0, where, first)
    defaults = next((e for e in entries if e.key == "defaults"), None)
    return Layout(package, head, defaults, [e for e in entries if e.key != "defaults"], noted)


def _adopt(entries: list[Entry], node: Any) -> None:
    """Mark every value a file sets as its own (a file the writer has not written yet: e.g. a new option, or
    one from before this module): each leaf of the schema, or a key outside it, gets '# this option'."""
    for e in entries:
        child = _node(node, e.key) if isinstance(node, DictConfig) and e.key in node.keys() else None
        if e.children and (child is None or _is_section(child)):
            _adopt(e.children, child)
        elif not e.own:
            code, comment = _split_comment(e.lines[0])
            e.lines[0] = f"{code}  {OWN}" + (f": {comment[1:].strip()}" if comment[1:].strip() else "")
            e.own = True


def _trimmed(lines: list[str]) -> list[str]:
    start = next((i for i, s in enumerate(lines) if s.strip()), len(lines))
    end = max((i + 1 for i, s in enumerate(lines) if s.strip()), default=start)
    return lines[start:end]


def _verbatim(e: Entry, indent: int) -> list[str]:
    """An own entry as written (its comment lines above it included), moved to ``indent``."""
    shift = indent - _indent(e.lines[0])
    moved = [s if not s.strip() else (" " * shift + s if shift >= 0 else s[-shift:]) for s in e.lines]
    lead = [(" " * indent + s.strip()) if s.strip() else "" for s in _trimmed(e.lead)]
    return lead + moved


def _kept(e: Entry, indent: int, where: str, key: str) -> list[str]:
    """A key the writer shows no value for (not in the schema, or left to a group): kept when it, or every key
    below it, is marked as the file's own."""
    if e.own:
        return _verbatim(e, indent)
    if not e.children:
        raise ConfigError(
            f"{where}: {key} is not a key whose value this file shows; end its line with '{OWN}' to keep it"
        )
    code, _ = _split_comment(e.lines[0])
    out = [" " * indent + code.strip()]
    for c in e.children:
        out += _kept(c, indent + 2, where, f"{key}.{c.key}")
    return out


def _own_tree(entries: list[Entry]) -> dict[str, Any]:
    """The values of the own lines alone, as a plain nested dict (interpolations kept as text)."""
    out: dict[str, Any] = {}
    for e in entries:
        if e.own:
            node = OmegaConf.create(textwrap.dedent("\n".join(e.lines)))
            out[e.key] = OmegaConf.to_container(node, resolve=False)[e.key]  # type: ignore[index]
        elif e.marked:
            out[e.key] = _own_tree(e.children)
    return out


def _own_lines(entries: list[Entry], indent: int) -> list[str]:
    out: list[str] = []
    for e in entries:
        if e.own:
            out += _verbatim(e, indent)
        elif e.marked:
            out += [" " * indent + _split_comment(e.lines[0])[0].strip(), *_own_lines(e.children, indent + 2)]
    return out


def own_text(text: str, where: str = "<text>") -> str:
    """An option file with only its own lines (header, defaults list and the lines marked ``# this option``):
    what it says without the values the writer shows. Composing with these gives the same config."""
    return _own_text(_layout(text, where))


def _own_text(lay: Layout) -> str:
    lines = [*lay.header, *(lay.defaults.lines if lay.defaults else []), *_own_lines(lay.entries, 0)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------- values


def _flat(value: Any, inner: bool) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        return {math.inf: ".inf", -math.inf: "-.inf"}.get(value, repr(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flat(v, True) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flat(str(k), True)}: {_flat(v, True)}" for k, v in value.items()) + "}"
    text = str(value)
    if text == "???" and not inner:
        return text
    special = (inner and re.search(r"[,\[\]{}#]|: ", text)) or text != text.strip() or not text
    plain = not special and _loads(text) == value and type(_loads(text)) is str
    return text if plain else json.dumps(text, ensure_ascii=False)


def _loads(text: str) -> Any:
    try:
        return OmegaConf.to_container(OmegaConf.create(f"k: {text}"), resolve=False)["k"]  # type: ignore[index]
    except Exception:  # text that is not a plain YAML value
        return object()


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same types (1 is not 1.0 nor True)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and (a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)))


def value_text(value: Any) -> str:
    """A value as YAML that OmegaConf reads back as the same value (floats as Python writes them: 0.003,
    1e-06; lists in flow style)."""
    text = _flat(value, False)
    if not _same(_loads(text), value):
        raise ConfigError(f"cannot write {value!r} as a YAML value that reads back the same")
    return text


# ------------------------------------------------------------------------------------ comments of the fields

_PRAGMA = re.compile(r"^(type:|noqa|fmt:|pragma|pyright:)")


@functools.cache
def _source(path: str) -> tuple[ast.Module, dict[int, str], frozenset[int]]:
    """A module's syntax tree, its comments by line and the lines that hold only a comment."""
    text = Path(path).read_text(encoding="utf-8")
    comments: dict[int, str] = {}
    alone = set()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string
            if not tok.line[: tok.start[1]].strip():
                alone.add(tok.start[0])
    return ast.parse(text), comments, frozenset(alone)


def _comment_of(path: str, node: ast.AST) -> str:
    """The comments on the lines of ``node``, or else the comment lines right above it (pragmas dropped)."""
    _, comments, alone = _source(path)
    first, last = node.lineno, node.end_lineno or node.lineno  # type: ignore[attr-defined]
    rows = [r for r in range(first, last + 1) if r in comments]
    if not rows:
        r = first - 1
        while r in alone:
            rows.insert(0, r)
            r -= 1
    pieces = [p.strip() for r in rows for p in re.split(r"(?:^|\s)#", comments[r])]
    return " ".join(p for p in pieces if p and not _PRAGMA.match(p))


@functools.cache
def _in_project(path: str) -> bool:
    return Path(path).resolve().is_relative_to(ROOT)


def _project_module(obj: Any) -> Any:
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    path = getattr(module, "__file__", None)
    return module if path and _in_project(path) else None


def _class_def(cls: type) -> tuple[str, ast.ClassDef] | None:
    """The ``class`` statement of ``cls`` in the project's source, if it has one."""
    module = _project_module(cls)
    if module is None:
        return None
    tree = _source(module.__file__)[0]
    node = next((n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls.__name__), None)
    return (module.__file__, node) if node else None


@functools.cache
def _made(cls: type) -> tuple[Any, ast.Call] | None:
    """For a dataclass made by a call (``make_dataclass``, a schema helper): the module and the call."""
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path or not _in_project(path):
            continue
        names = [n for n, v in vars(module).items() if v is cls]
        if not names:
            continue
        for stmt in ast.walk(_source(path)[0]):
            if not isinstance(stmt, ast.Assign):
                continue
            for target in stmt.targets:
                if isinstance(target, ast.Name) and target.id in names and isinstance(stmt.value, ast.Call):
                    return module, stmt.value
                if isinstance(target, ast.Tuple) and isinstance(stmt.value, ast.Tuple):
                    for t, v in zip(target.elts, stmt.value.elts, strict=False):
                        if isinstance(t, ast.Name) and t.id in names and isinstance(v, ast.Call):
                            return module, v
    return None


def _dataclass_named(module: Any, node: ast.AST) -> type | None:
    value = getattr(module, node.id, None) if isinstance(node, ast.Name) else None
    return value if isinstance(value, type) and dataclasses.is_dataclass(value) else None


def _has_field(cls: type, name: str) -> bool:
    return any(f.name == name for f in dataclasses.fields(cls))


def _copied(module: Any, value: ast.AST | None) -> tuple[type, str] | None:
    """``like(Cls, "name")`` as a field's value: (Cls, name)."""
    if isinstance(value, ast.Call) and len(value.args) == 2 and isinstance(value.args[1], ast.Constant):
        cls, name = _dataclass_named(module, value.args[0]), value.args[1].value
        if cls is not None and isinstance(name, str) and _has_field(cls, name):
            return cls, name
    return None


def _like_target(module: Any, call: ast.AST, name: str) -> type | None:
    """``like(Cls, "name")`` / ``_like(Cls, …, "name", …)``: Cls."""
    if isinstance(call, ast.Call) and call.args:
        cls = _dataclass_named(module, call.args[0])
        strings = [a.value for a in call.args[1:] if isinstance(a, ast.Constant)]
        if cls is not None and name in strings and _has_field(cls, name):
            return cls
    return None


@functools.cache
def _origin(cls: type, name: str) -> tuple[type, str, str]:
    """``(defining class, comment, where)`` of field ``name`` of dataclass ``cls``: the class in the MRO that
    declares it, followed to the library class it copies (``like``/``schema``) when it has no comment."""
    for owner in cls.__mro__:
        if name in inspect.get_annotations(owner):
            break
    else:
        return cls, "", f"{cls.__module__}.{cls.__qualname__}"
    found = _class_def(owner)
    if found is not None:
        path, node = found
        module = _project_module(owner)
        for stmt in node.body:
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and stmt.target.id == name
            ):
                comment = _comment_of(path, stmt)
                copied = _copied(module, stmt.value)
                if not comment and copied is not None:  # x = like(Cls, "y"): Cls.y's comment
                    return _origin(*copied)
                return owner, comment, f"{owner.__module__}.{owner.__qualname__}"
    made = _made(owner)
    if made is not None:
        module, call = made
        for node in ast.walk(call):
            if isinstance(node, ast.Tuple) and node.elts and getattr(node.elts[0], "value", None) == name:
                comment = _comment_of(module.__file__, node)
                copied = next(
                    (c for c in map(lambda n: _like_target(module, n, name), ast.walk(node)) if c), None
                )
                if not comment and copied is not None:
                    return _origin(copied, name)
                return owner, comment, f"{module.__name__}.{owner.__name__}"
            copied = _like_target(module, node, name) if node is not call else None
            if copied is not None:
                return _origin(copied, name)
        base = _dataclass_named(module, call.args[0]) if call.args else None
        if base is not None and _has_field(base, name):  # schema(LibraryClass, …)
            return _origin(base, name)
    return owner, "", f"{owner.__module__}.{owner.__qualname__}"


def field_comment(cls: type, name: str) -> str:
    """The one-line comment of field ``name`` of dataclass ``cls``, read from its source: the comment after
    the field, or the comment lines above it; for a field copied from another class (``like``, a schema of a
    library class), that class's."""
    return _origin(cls, name)[1]


def _rule(cls: type, name: str) -> str:
    """The rule of a field, as a comment: "> 0", "in [0, 1]", "one of: a, b"."""
    meta = next(f.metadata for f in dataclasses.fields(cls) if f.name == name)
    if "choices" in meta:
        return "one of: " + ", ".join(value_text(c) for c in dict.fromkeys(meta["choices"]))
    if "low" in meta:
        if meta.get("high") is not None:
            return f"in [{meta['low']}, {meta['high']}]"
        return f"{'>' if meta.get('low_open') else '≥'} {meta['low']}"
    if "path" in meta:
        return f"a {'file' if meta['path'] == 'file' else 'folder'}"
    return ""


def _doc(cls: type) -> str:
    """The first sentence of a dataclass's docstring (of the library class a schema was made from)."""
    doc = cls.__doc__ or ""
    if doc.startswith(f"{cls.__name__}("):  # the signature dataclasses writes when there is no docstring
        made = _made(cls)
        base = _dataclass_named(made[0], made[1].args[0]) if made and made[1].args else None
        return _doc(base) if base is not None else ""
    m = re.match(r"Schema of ([\w.]+)\.$", doc.strip())
    if m:
        module, _, name = m.group(1).rpartition(".")
        base = getattr(sys.modules.get(module), name, None)
        return _doc(base) if isinstance(base, type) else ""
    first = " ".join(doc.strip().split("\n\n")[0].split())
    first = re.sub(r":\w+:`~?([^`]+)`", r"\1", first)
    first = re.sub(r"``([^`]+)``", r"\1", first)
    return first


# ------------------------------------------------------------------------------------------ the conf/ tree


def _node(n: DictConfig, key: str) -> Any:
    return n._get_node(key)


def _is_section(n: Any) -> bool:
    """A nested settings node (written as a block of keys), not a leaf value."""
    return (
        isinstance(n, DictConfig)
        and not n._is_none()
        and not n._is_missing()
        and not n._is_interpolation()
        and dataclasses.is_dataclass(OmegaConf.get_type(n))
    )


def _shows_something(n: DictConfig) -> bool:
    """Has the schema a default value (not ``???``) to show?"""
    for k in n.keys():
        child = _node(n, str(k))
        if _is_section(child) and _shows_something(child):
            return True
        if not _is_section(child) and not OmegaConf.is_missing(n, str(k)):
            return True
    return False


def _store(path: str) -> DictConfig | None:
    """A node of Hydra's ConfigStore (a schema), or None."""
    try:
        node = ConfigStore.instance().load(f"{path}.yaml").node
    except OSError:  # Hydra's ConfigLoadError: not in the store
        return None
    return copy.deepcopy(node) if isinstance(node, DictConfig) else None


def _place(node: DictConfig, package: str) -> DictConfig:
    out: Any = node
    for part in reversed([p for p in package.split(".") if p]):
        out = OmegaConf.create({part: out})
    return out


@dataclass
class Base:
    """The values a file's defaults list gives its keys (before the file's own lines), and where each came
    from (the option file that set it; unlisted = the schema)."""

    node: DictConfig | None = None
    origin: dict[str, str] = field(default_factory=dict)

    def merge(self, node: DictConfig, origin: dict[str, str]) -> None:
        self.node = node if self.node is None else OmegaConf.merge(self.node, node)  # type: ignore[assignment]
        self.origin.update(origin)


class Conf:
    """The option files of a conf/ folder and the values their defaults lists give them."""

    def __init__(self, conf: Path) -> None:
        register()
        self.conf = conf
        self._layouts: dict[str, Layout] = {}
        self.primaries: dict[str, tuple[DictConfig, dict[str, str]]] = {}  # name -> (schema, group -> option)
        for path in sorted(conf.glob("*.yaml")):
            entries = self._defaults(path.relative_to(conf).as_posix())
            schemas = [e for e in entries if isinstance(e, str) and _store(e.split("@")[0]) is not None]
            if schemas:
                groups = {str(k): str(v) for e in entries if isinstance(e, dict) for k, v in e.items()}
                self.primaries[path.stem] = (_store(schemas[0].split("@")[0]), groups)  # type: ignore[assignment]
        self._full: dict[str, Base] = {}

    def text(self, rel: str) -> str:
        return (self.conf / rel).read_text(encoding="utf-8")

    def layout(self, rel: str) -> Layout:
        if rel not in self._layouts:
            self._layouts[rel] = _layout(self.text(rel), f"conf/{rel}")
        return self._layouts[rel]

    def adopted(self, rel: str) -> Layout:
        """The layout of ``rel``; in a file the writer has not written yet, every value it sets is its own."""
        lay = self.layout(rel)
        if not lay.noted:
            name = rel.removesuffix(".yaml")
            _adopt(lay.entries, self.primaries[name][0] if name in self.primaries else self.base(rel).node)
            lay.noted = True
        return lay

    def _defaults(self, rel: str) -> list[Any]:
        lay = self.layout(rel)
        if lay.defaults is None:
            return []
        return yaml.safe_load("\n".join(lay.defaults.lines))["defaults"] or []

    def group_schema(self, group: str, where: str) -> DictConfig | None:
        """The node the primaries' schemas give a group (the same in each primary that has the group)."""
        nodes = [
            _node(schema, group)
            for schema, groups in self.primaries.values()
            if group in groups and group in schema.keys() and _is_section(_node(schema, group))
        ]
        types = {OmegaConf.get_type(n) for n in nodes}
        if len(types) > 1:
            raise ConfigError(f"{where}: the primaries type group {group} differently; name its schema")
        return copy.deepcopy(nodes[0]) if nodes else None

    def base(self, rel: str) -> Base:
        """The values of ``rel``'s defaults list, merged in its order, without the file's own lines."""
        where, group = f"conf/{rel}", rel.rpartition("/")[0]
        lay = self.layout(rel)
        glob = lay.package == "_global_"
        out = Base()
        for entry in self._defaults(rel):
            if entry == "_self_":
                continue
            if not isinstance(entry, str):
                raise ConfigError(
                    f"{where}: defaults entry {entry!r}: the writer reads only config names here"
                )
            name, _, package = entry.partition("@")
            path = name[1:] if name.startswith("/") else (f"{group}/{name}" if group else name)
            folder = path.rpartition("/")[0]
            if package == "_here_" or (not package and not glob and folder == group):
                package = ""  # the file's own node
            elif not package and glob:
                package = folder  # a config's own group, as Hydra places it
            elif not glob:
                raise ConfigError(
                    f"{where}: defaults entry {entry!r}: the writer reads _here_ or the same group"
                )
            if (self.conf / f"{path}.yaml").is_file():
                full = self.full(f"{path}.yaml")
                if full.node is not None:
                    prefix = f"{package}." if package else ""
                    out.merge(_place(full.node, package), {prefix + k: v for k, v in full.origin.items()})
            elif (node := _store(path)) is not None:
                out.merge(_place(node, package), {})
            else:
                raise ConfigError(f"{where}: defaults entry {entry!r}: no such file or schema")
        if out.node is None and group and not glob and (node := self.group_schema(group, where)) is not None:
            out.merge(node, {})  # an option without a schema of its own takes the primaries' (trainer/)
        return out

    def full(self, rel: str) -> Base:
        """The value of option ``rel`` itself: its defaults list, then its own lines."""
        if rel not in self._full:
            out = self.base(rel)
            own = _own_tree(self.adopted(rel).entries)
            if own:
                out.merge(OmegaConf.create(own), {k: rel for k, _ in _leaves(own)})
            self._full[rel] = out
        return self._full[rel]

    def targets(self) -> list[str]:
        """The files the writer writes: the primaries, and the options of each group typed by a schema."""
        out = [f"{name}.yaml" for name in self.primaries]
        groups = {g for _, groups in self.primaries.values() for g in groups}
        for group in sorted(groups):
            for path in sorted((self.conf / group).glob("*.yaml")):
                rel = path.relative_to(self.conf).as_posix()
                base = self.base(rel).node
                shown = (
                    _node(base, group)
                    if base is not None and self.layout(rel).package == "_global_"
                    else base
                )
                if shown is not None and _is_section(shown) and _shows_something(shown):
                    out.append(rel)
        return out

    def skipped(self, name: str) -> set[str]:
        """Keys of primary ``name`` it does not show: its groups, and keys a group option sets globally."""
        schema, groups = self.primaries[name]
        skip = set(groups)
        for group in groups:
            for path in (self.conf / group).glob("*.yaml"):
                lay = _layout(path.read_text(encoding="utf-8"), f"conf/{group}/{path.name}")
                if lay.package == "_global_":
                    skip |= {e.key for e in lay.entries if e.key in schema.keys()}
        return skip


# ----------------------------------------------------------------------------------------------- the writer


def _line(indent: int, key: str, value: str, comment: str) -> list[str]:
    """``key: value  # comment``; a comment too long for the line goes above it."""
    line = f"{' ' * indent}{key}: {value}" if value else f"{' ' * indent}{key}:"
    if not comment:
        return [line]
    if len(line) + 4 + len(comment) <= WIDTH:
        return [f"{line}  # {comment}"]
    wrapped = textwrap.wrap(comment, WIDTH - indent - 2, break_on_hyphens=False)
    return [f"{' ' * indent}# {w}" for w in wrapped] + [line]


@dataclass
class _Out:
    where: str
    origin: dict[str, str]
    sources: dict[str, None] = field(default_factory=dict)  # the classes whose defaults are shown
    parents: dict[str, None] = field(default_factory=dict)  # the option files whose values are shown


def _section(
    node: DictConfig, entries: list[Entry], indent: int, prefix: str, skip: set[str], out: _Out
) -> list[str]:
    """The lines of a mapping: its own entries as written, then every other key of the schema."""
    cls = OmegaConf.get_type(node)
    keys = [str(k) for k in node.keys()]
    by_key = {e.key: e for e in entries}
    lines: list[str] = []
    for e in entries:
        if e.key in skip and not e.marked:
            continue  # a value the writer showed before the key was left to a group option
        if e.own or e.key not in keys or e.key in skip:
            kept = _kept(e, indent, out.where, prefix + e.key)
            if lines and indent == 0 and any(s.lstrip().startswith("#") for s in kept[:1]):
                lines.append("")
            lines += kept
    shown: list[str] = []
    for key in keys:
        e = by_key.get(key)
        if key in skip or (e is not None and e.own):
            continue
        child = _node(node, key)
        comment = ""
        if dataclasses.is_dataclass(cls):
            _owner, comment, source = _origin(cls, key)
            comment = comment or ("" if _is_section(child) else _rule(cls, key))
        parent = out.origin.get(prefix + key)
        if _is_section(child):
            sub = _section(child, e.children if e else [], indent + 2, f"{prefix}{key}.", set(), out)
            block = _line(indent, key, "", comment or _doc(OmegaConf.get_type(child))) + sub
            shown += ([""] if indent == 0 else []) + block
            continue
        if e is not None and e.marked:
            raise ConfigError(
                f"{out.where}: {prefix}{key}: mark the key line itself '{OWN}' (its whole value)"
            )
        value = OmegaConf.to_container(node, resolve=False)[key]  # type: ignore[index]
        if parent:
            out.parents[parent] = None
            comment = f"from {parent}" + (f"; {comment}" if comment else "")
        elif dataclasses.is_dataclass(cls):
            out.sources[source] = None
        if indent == 0 and shown and shown[-1].startswith(" "):
            shown.append("")
        shown += _line(indent, key, value_text(value), comment)
    if lines and shown and indent == 0 and shown[0]:
        lines.append("")
    return lines + shown


def _note(out: _Out) -> list[str]:
    sources = list(out.sources) or ["its schema"]
    named = ", ".join(sources[:-1]) + (" and " if len(sources) > 1 else "") + sources[-1]
    parents = f", and of {', '.join(out.parents)}" if out.parents else ""
    text = (
        f"{NOTE} a line marked '{OWN}' is this file's own choice; `{COMMAND}` writes every other line, "
        f"with its comment, from the defaults of {named}{parents} (run it again after changing one)."
    )
    return [f"# {w}" for w in textwrap.wrap(text[2:], WIDTH - 2, break_on_hyphens=False)]


def render(conf: Conf, rel: str) -> str:
    """The text the writer writes for ``conf/<rel>``."""
    where = f"conf/{rel}"
    lay = conf.adopted(rel)
    name = rel.removesuffix(".yaml")
    if name in conf.primaries:
        node, skip, origin = conf.primaries[name][0], conf.skipped(name), {}
    else:
        base = conf.base(rel)
        assert base.node is not None, where
        node, origin = base.node, base.origin
        group = rel.rpartition("/")[0]
        skip = {str(k) for k in node.keys()} - {group} if lay.package == "_global_" else set()
    out = _Out(where, origin)
    body = _section(node, lay.entries, 0, "", skip, out)
    head = [*lay.header, *_note(out), *(lay.defaults.lines if lay.defaults else [])]
    text = "\n".join([*head, "", *_trimmed(body)]) + "\n"
    _verify(text, _own_text(lay), node, skip, where)
    return text


def _verify(text: str, own: str, node: DictConfig, skip: set[str], where: str) -> None:
    """What was written reads back as the own values over the defaults list's (the writer's own check)."""
    written = OmegaConf.to_container(OmegaConf.create(text), resolve=False)
    expected = OmegaConf.to_container(node, resolve=False)
    expected = {k: v for k, v in expected.items() if k not in skip}  # type: ignore[union-attr]
    merged = OmegaConf.to_container(OmegaConf.merge(expected, OmegaConf.create(own)), resolve=False)
    for key, value in _leaves(merged):
        got = _get(written, key)
        if not _same(got, value):
            raise ConfigError(f"{where}: {key} would be written as {got!r}, not {value!r} (a writer bug)")


def _leaves(tree: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(tree, dict) and tree:
        for k, v in tree.items():
            yield from _leaves(v, f"{prefix}{k}.")
    else:
        yield prefix[:-1], tree


_ABSENT = object()


def _get(tree: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return _ABSENT
        tree = tree[part]
    return tree


def option_files(conf: Path = CONF) -> list[str]:
    """The files under ``conf`` whose values the writer shows (relative paths)."""
    return Conf(conf).targets()


def _describe(rel: str, now: str, new: str) -> list[str]:
    """Each key whose value differs between the file and what the writer writes, or one line when only the
    comments or the order do."""
    a = OmegaConf.to_container(OmegaConf.create(now), resolve=False)
    b = OmegaConf.to_container(OmegaConf.create(new), resolve=False)
    keys = dict.fromkeys([k for k, _ in _leaves(a)] + [k for k, _ in _leaves(b)])
    out = []
    for key in keys:
        x, y = _get(a, key), _get(b, key)
        if not _same(x, y):
            here = "absent" if x is _ABSENT else value_text(x)
            there = "absent" if y is _ABSENT else value_text(y)
            out.append(f"conf/{rel}: {key} is {here} here; the writer writes {there}")
    return out or [f"conf/{rel}: comments, marks or order differ from what the writer writes"]


def differences(conf: Path = CONF) -> list[str]:
    """One line per key of an option file whose value is not what the writer would write (empty: up to
    date). The last line says how to fix it."""
    c = Conf(conf)
    out: list[str] = []
    for rel in c.targets():
        now, new = c.text(rel), render(c, rel)
        if now != new:
            out += _describe(rel, now, new)
    if out:
        out.append(
            f"run `{COMMAND}` to write them (a value of the file's own: end its line with '{OWN}' first)"
        )
    return out


def write(conf: Path = CONF) -> list[str]:
    """Rewrite every option file whose text differs from what the writer writes; returns those files."""
    c = Conf(conf)
    texts = {
        rel: render(c, rel) for rel in c.targets()
    }  # all first: a parent's values come from its own lines
    changed = [rel for rel, text in texts.items() if c.text(rel) != text]
    for rel in changed:
        (conf / rel).write_text(texts[rel], encoding="utf-8")
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="list the differences, exit 1 if any")
    parser.add_argument("--conf", type=Path, default=CONF, help="the conf folder (default: the checkout's)")
    args = parser.parse_args(argv)
    try:
        if args.check:
            found = differences(args.conf)
            print("\n".join(found) if found else f"{len(option_files(args.conf))} files up to date")
            return 1 if found else 0
        changed = write(args.conf)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(f"wrote conf/{rel}" for rel in changed) or "every file up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
