"""The project's documentation as tests read it: README.md (the map) and docs/*.md (the manual), their fenced
code blocks, sections and links, and the pipeline commands they show."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from tests._env import ROOT

README = ROOT / "README.md"


def doc_files() -> list[Path]:
    """README.md, then every docs/*.md in name order."""
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`([^`\n]+(?:\n[^`\n]+)*)`")  # a span may wrap onto the next line
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` of every fenced code block."""
    return [(m.group(1).strip(), m.group(2)) for m in FENCE.finditer(text)]


def without_code(text: str) -> str:
    """The prose of a Markdown text: fenced blocks and inline code spans removed."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def section(text: str, title: str) -> str | None:
    """The body of the section headed ``title`` (any level), up to the next heading of the same or a higher
    level; None when there is no such heading."""
    for m in HEADING.finditer(text):
        if m.group(2) == title:
            rest = text[m.end() :]
            level = len(m.group(1))
            end = re.search(rf"^#{{1,{level}}}[ \t]", rest, re.M)
            return rest[: end.start()] if end else rest
    return None


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a Markdown text (a repeated heading gets -1, -2, … as on GitHub)."""
    seen: dict[str, int] = {}
    out = set()
    for m in HEADING.finditer(FENCE.sub("", text)):
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def links(text: str) -> list[str]:
    """The targets of the Markdown links in the prose (not in code)."""
    return LINK.findall(without_code(text))


@dataclass(frozen=True)
class Command:
    """One ``python -m pipelines.<pipeline>[.<task>] …`` command shown in a document."""

    where: str  # file:line
    pipeline: str  # the module after "pipelines.": "asr", "asr.test", "caption.generate", …
    args: tuple[str, ...]  # after shell quote removal; "…" placeholders replaced
    comment: str  # the text after "#" on its line ("" when none)

    @property
    def config(self) -> str:
        """The primary config the entry point composes: ``asr``, ``asr_test``, ``caption_generate``, …"""
        return self.pipeline.replace(".", "_")

    def __str__(self) -> str:
        return f"{self.where}: python -m pipelines.{self.pipeline} {shlex.join(self.args)}"


PIPELINE_CMD = re.compile(
    r"(?:^|[\s/])python3? -m pipelines\.((?:asr|caption)(?:\.(?:test|transcribe|export|prepare|generate))?)\b(.*)",
    re.S,
)
COMMENT = re.compile(r"\s#(?:\s|$)")


def _command(line: str, where: str) -> Command | None:
    m = PIPELINE_CMD.search(line)
    if m is None:
        return None
    rest, comment = m.group(2), ""
    c = COMMENT.search(rest)
    if c:
        rest, comment = rest[: c.start()], rest[c.end() :].strip()
    rest = re.split(r"\s(?:&&|\|\||;|\|)\s", rest)[0]  # the command ends where the shell starts another
    # "…" stands for a part of a path the reader fills in (outputs/…/checkpoints/last.ckpt)
    args = tuple(a.replace("…", "x") for a in shlex.split(rest))
    return Command(where, m.group(1), args, comment)


def pipeline_commands(path: Path) -> list[Command]:
    """Every pipeline command in the fenced code blocks and inline code spans of ``path`` (a block's lines
    ending in a backslash are joined first)."""
    text = path.read_text()
    name = path.relative_to(ROOT).as_posix()
    found: list[Command] = []
    for m in FENCE.finditer(text):
        first = text.count("\n", 0, m.start(2)) + 1
        lines = m.group(2).split("\n")
        i = 0
        while i < len(lines):
            start, line = i, lines[i]
            while line.endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line[:-1] + " " + lines[i]
            cmd = _command(line, f"{name}:{first + start}")
            if cmd is not None:
                found.append(cmd)
            i += 1
    prose = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)  # keep the line numbers
    for m in INLINE_CODE.finditer(prose):
        span = " ".join(m.group(1).split())
        cmd = _command(span, f"{name}:{prose.count(chr(10), 0, m.start()) + 1}")
        if cmd is not None:
            found.append(cmd)
    return found
