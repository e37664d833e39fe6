"""Labels that are not strings are refused naming the file and line (or JSON entry), never trained as their
Python repr; a UTF-8 byte-order mark at the start of a manifest or caption file is ignored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lstm_seq.audio.data.manifest import ManifestError, read_manifest
from lstm_seq.vision.data.formats import read_coco, read_flickr, read_karpathy

BOM = "\ufeff"


@pytest.mark.parametrize("text", [["turn", "left"], True, {"a": 1}, 5])
def test_manifest_text_that_is_not_a_string_is_refused_with_file_and_line(
    tmp_path: Path, text: object
) -> None:
    m = tmp_path / "m.jsonl"
    rows = [
        {"audio_filepath": "a.wav", "duration": 1.0, "text": "go"},
        {"audio_filepath": "b.wav", "duration": 1.0, "text": text},
    ]
    m.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ManifestError, match=rf"{m}:2: text must be a string, got {type(text).__name__}"):
        read_manifest(m)


def test_manifest_null_text_and_non_string_path_are_refused(tmp_path: Path) -> None:
    m = tmp_path / "m.jsonl"
    m.write_text(json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "text": None}) + "\n")
    with pytest.raises(ManifestError, match=rf"{m}:1: missing field"):
        read_manifest(m)
    m.write_text(json.dumps({"audio_filepath": ["a.wav"], "duration": 1.0, "text": "go"}) + "\n")
    with pytest.raises(ManifestError, match=rf"{m}:1: audio_filepath must be a string, got list"):
        read_manifest(m)


@pytest.mark.parametrize("caption", [None, ["a", "list"], 3])
def test_coco_caption_that_is_not_a_string_is_refused(tmp_path: Path, caption: object) -> None:
    ann = {
        "images": [{"id": 1, "file_name": "a.jpg"}],
        "annotations": [{"image_id": 1, "caption": "a dog"}, {"image_id": 1, "caption": caption}],
    }
    (tmp_path / "c.json").write_text(json.dumps(ann))
    with pytest.raises(ValueError, match=r"c\.json: annotations\[1\]\.caption must be a string"):
        read_coco(tmp_path / "c.json", tmp_path, "train")


def test_karpathy_sentence_that_is_not_a_string_is_refused(tmp_path: Path) -> None:
    data = {"images": [{"filename": "a.jpg", "split": "train", "sentences": [{"raw": "a"}, {"raw": None}]}]}
    (tmp_path / "k.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"k\.json: images\[0\]\.sentences\[1\]\.raw must be a string"):
        read_karpathy(tmp_path / "k.json", tmp_path)


def test_byte_order_mark_in_manifests_and_caption_files_is_ignored(tmp_path: Path) -> None:
    row = {"audio_filepath": "a.wav", "duration": 1.0, "text": "go left"}
    (tmp_path / "m.jsonl").write_text(BOM + json.dumps(row) + "\n", encoding="utf-8")
    (tmp_path / "m.csv").write_text(
        BOM + "audio_filepath,duration,text\na.wav,1.0,go left\n", encoding="utf-8"
    )
    for name in ("m.jsonl", "m.csv"):
        (utt,) = read_manifest(tmp_path / name)
        assert utt.text == "go left" and utt.audio_filepath == str(tmp_path / "a.wav")
    (tmp_path / "t.txt").write_text(BOM + "img1.jpg#0\ta dog\nimg1.jpg#1\ta brown dog\n", encoding="utf-8")
    (tmp_path / "train.txt").write_text(BOM + "img1.jpg\n", encoding="utf-8")
    (item,) = read_flickr(tmp_path / "t.txt", tmp_path, {"train": tmp_path / "train.txt"})
    assert item.image_id == "img1.jpg" and item.captions == ["a dog", "a brown dog"] and item.split == "train"
    ann = {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1, "caption": "a dog"}]}
    (tmp_path / "c.json").write_text(BOM + json.dumps(ann), encoding="utf-8")
    assert read_coco(tmp_path / "c.json", tmp_path, "train")[0].captions == ["a dog"]
    data = {"images": [{"filename": "a.jpg", "split": "train", "sentences": [{"raw": "a cat"}]}]}
    (tmp_path / "k.json").write_text(BOM + json.dumps(data), encoding="utf-8")
    assert read_karpathy(tmp_path / "k.json", tmp_path)[0].captions == ["a cat"]
