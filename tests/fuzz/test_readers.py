"""Fuzzing the readers of user files: random bytes, truncated and mutated valid files. Each call returns a value
or raises the project's own error naming the file; never any other exception, never a hang."""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from lstm_seq.audio.data.io import AudioReadError, audio_info, load_audio
from lstm_seq.audio.data.manifest import ManifestError, read_manifest
from lstm_seq.vision.data.formats import read_coco, read_flickr, read_karpathy
from lstm_seq.vision.data.images import ImageLoadError, load_image
from tests.fuzz.conftest import FUZZ, damaged

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    # module-scoped: Hypothesis runs many examples per test call, so no function-scoped tmp_path
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _wav(fmt: str, subtype: str) -> bytes:
    t = np.arange(1600) / 16000
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000, format=fmt, subtype=subtype)
    return buf.getvalue()


AUDIO = {"a.wav": _wav("WAV", "PCM_16"), "a.flac": _wav("FLAC", "PCM_16"), "a.ogg": _wav("OGG", "VORBIS")}


def _image(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


IMAGES = {f"i.{ext}": _image(fmt) for ext, fmt in [("png", "PNG"), ("jpg", "JPEG"), ("gif", "GIF"),
                                                   ("bmp", "BMP"), ("tif", "TIFF"), ("webp", "WEBP")]}  # fmt: skip


def _audio_outcome(path: Path) -> None:
    try:
        wav = load_audio(path, 8000)
    except AudioReadError as exc:
        assert str(path) in str(exc)
    else:
        assert wav.dtype == np.float32 and wav.ndim == 1 and np.all(np.isfinite(wav))
    try:
        info = audio_info(path)
    except AudioReadError as exc:
        assert str(path) in str(exc)
    else:
        assert info.sample_rate > 0 and info.frames > 0


@FUZZ
@given(data=st.binary(max_size=2048), name=st.sampled_from(sorted(AUDIO)))
def test_audio_reader_random_bytes(scratch: Path, data: bytes, name: str) -> None:
    _audio_outcome(_write(scratch, name, data))


@FUZZ
@given(data=st.data(), name=st.sampled_from(sorted(AUDIO)))
def test_audio_reader_damaged_files(scratch: Path, data: st.DataObject, name: str) -> None:
    _audio_outcome(_write(scratch, name, data.draw(damaged(AUDIO[name]))))


def _image_outcome(path: Path) -> None:
    try:
        img = load_image(path, max_pixels=1_000_000)
    except ImageLoadError as exc:
        assert str(path) in str(exc) and exc.reason
    else:
        assert img.mode == "RGB" and img.size[0] >= 1 and img.size[1] >= 1


@FUZZ
@given(data=st.binary(max_size=2048), name=st.sampled_from(sorted(IMAGES)))
def test_image_reader_random_bytes(scratch: Path, data: bytes, name: str) -> None:
    _image_outcome(_write(scratch, name, data))


@FUZZ
@given(data=st.data(), name=st.sampled_from(sorted(IMAGES)))
def test_image_reader_damaged_files(scratch: Path, data: st.DataObject, name: str) -> None:
    _image_outcome(_write(scratch, name, data.draw(damaged(IMAGES[name]))))


MANIFEST = (
    b'{"audio_filepath": "a.wav", "duration": 1.5, "text": "hello there"}\n'
    b'{"audio_filepath": "/abs/b.flac", "text": "no duration"}\n'
)
MANIFEST_CSV = b"audio_filepath,duration,text\na.wav,1.5,hello there\nb.wav,,no duration\n"


def _manifest_outcome(path: Path) -> None:
    try:
        rows = read_manifest(path)
    except ManifestError as exc:
        assert str(path) in str(exc)
    else:
        assert all(isinstance(u.duration, float) and isinstance(u.text, str) for u in rows)


@FUZZ
@given(data=st.binary(max_size=512), suffix=st.sampled_from([".jsonl", ".csv", ".tsv"]))
def test_manifest_parser_random_bytes(scratch: Path, data: bytes, suffix: str) -> None:
    _manifest_outcome(_write(scratch, f"m{suffix}", data))


@FUZZ
@given(data=st.data(), suffix=st.sampled_from([".jsonl", ".csv"]))
def test_manifest_parser_damaged_files(scratch: Path, data: st.DataObject, suffix: str) -> None:
    valid = MANIFEST if suffix == ".jsonl" else MANIFEST_CSV
    _manifest_outcome(_write(scratch, f"m{suffix}", data.draw(damaged(valid))))


COCO = json.dumps(
    {
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
        "annotations": [{"image_id": 1, "caption": "A dog."}, {"image_id": 2, "caption": "Two cats"}],
    }
).encode()
FLICKR = b"a.jpg#0\tA dog runs .\na.jpg#1\tA brown dog .\nb.jpg#0\tTwo cats sleep .\n"
KARPATHY = json.dumps(
    {
        "images": [
            {"filepath": "val2014", "filename": "a.jpg", "split": "test", "cocoid": 1,
             "sentences": [{"raw": "A dog."}]},
            {"filename": "b.jpg", "split": "restval", "imgid": 2, "sentences": [{"raw": "Two cats"}]},
        ]
    }
).encode()  # fmt: skip
CAPTION_FILES = {"coco": COCO, "flickr": FLICKR, "karpathy": KARPATHY}


def _caption_outcome(kind: str, path: Path) -> None:
    try:
        if kind == "coco":
            items = read_coco(path, path.parent, "train")
        elif kind == "flickr":
            items = read_flickr(path, path.parent)
        else:
            items = read_karpathy(path, path.parent)
    except ValueError as exc:  # the readers' own error: ValueError naming the file
        assert type(exc) is ValueError and str(path) in str(exc), repr(exc)
    else:
        for it in items:
            assert isinstance(it.image, str) and isinstance(it.image_id, str)
            assert all(isinstance(c, str) for c in it.captions)


@FUZZ
@given(data=st.binary(max_size=512), kind=st.sampled_from(sorted(CAPTION_FILES)))
def test_caption_parsers_random_bytes(scratch: Path, data: bytes, kind: str) -> None:
    _caption_outcome(kind, _write(scratch, f"{kind}.txt", data))


@FUZZ
@given(data=st.data(), kind=st.sampled_from(sorted(CAPTION_FILES)))
def test_caption_parsers_damaged_files(scratch: Path, data: st.DataObject, kind: str) -> None:
    _caption_outcome(kind, _write(scratch, f"{kind}.txt", data.draw(damaged(CAPTION_FILES[kind]))))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@FUZZ
@given(kind=st.sampled_from(["coco", "karpathy"]), field=st.sampled_from(["images", "annotations", "id",
       "file_name", "image_id", "caption", "filename", "filepath", "split", "sentences", "raw", "cocoid"]),
       value=JSON_VALUES)  # fmt: skip
def test_caption_json_with_wrong_field_types(scratch: Path, kind: str, field: str, value: object) -> None:
    """Valid JSON of the wrong shape: every occurrence of one field replaced by an arbitrary JSON value."""

    def swap(node: object) -> object:
        if isinstance(node, dict):
            return {k: (value if k == field else swap(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [swap(v) for v in node]
        return node

    doc = swap(json.loads(CAPTION_FILES[kind]))
    _caption_outcome(kind, _write(scratch, f"{kind}.json", json.dumps(doc).encode()))


@FUZZ
@given(field=st.sampled_from(["audio_filepath", "duration", "text"]), value=JSON_VALUES)
def test_manifest_with_wrong_field_types(scratch: Path, field: str, value: object) -> None:
    rows = [json.loads(line) for line in MANIFEST.decode().splitlines()]
    for row in rows:
        row[field] = value
    text = "\n".join(json.dumps(row) for row in rows) + "\n"
    _manifest_outcome(_write(scratch, "m.jsonl", text.encode()))
