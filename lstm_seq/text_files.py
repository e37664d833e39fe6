"""Reading users' text files (manifests, caption files) with errors that name the file and line."""

from __future__ import annotations

from pathlib import Path


def read_utf8(path: Path, error: type[Exception] = ValueError) -> str:
    """The file's contents as UTF-8 text without a leading byte-order mark (Windows editors write one);
    bytes that are not UTF-8 raise ``error`` naming the file, the line and the offending byte."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise error(f"{path}:{line}: not UTF-8 text (byte {raw[exc.start]:#04x})") from None
