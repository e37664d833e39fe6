"""Audio reading (formats, channels, rates, bad files) and manifests (JSONL/CSV, bad lines)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lstm_seq.audio.data.io import AudioReadError, audio_info, find_audio_files, is_silent, load_audio
from lstm_seq.audio.data.manifest import ManifestError, Utterance, read_manifest, write_manifest

from .conftest import speechlike


def test_formats_channels_and_rates(audio_dir: Path) -> None:
    wav = load_audio(audio_dir / "speech.wav", 16000)
    assert wav.dtype == np.float32 and wav.ndim == 1 and len(wav) == 24000
    stereo = load_audio(audio_dir / "sub" / "stereo44k.flac", 16000)
    assert stereo.ndim == 1 and abs(len(stereo) - 16000) <= 1  # 1 s at 44.1 kHz → 16 kHz mono
    ogg = load_audio(audio_dir / "sub" / "clip.ogg", 16000)
    assert abs(len(ogg) - int(0.8 * 16000)) <= 2
    assert audio_info(audio_dir / "long.wav").duration == pytest.approx(7.5)


def test_stereo_is_channel_mean(tmp_path: Path) -> None:
    left, right = speechlike(0.5, seed=1), speechlike(0.5, seed=2)
    sf.write(tmp_path / "s.wav", np.stack([left, right], 1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "s.wav"), (left + right) / 2, atol=1e-6)


def test_resampling_keeps_a_tone(tmp_path: Path) -> None:
    t = np.arange(44100) / 44100
    sf.write(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 440 * t), 44100, subtype="FLOAT")
    y = load_audio(tmp_path / "tone.wav", 16000)
    spectrum = np.abs(np.fft.rfft(y[1000:-1000]))
    peak_hz = np.argmax(spectrum) * 16000 / len(y[1000:-1000])
    assert abs(peak_hz - 440) < 3


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.wav", "file not found"),
        ("empty.wav", "empty file"),
        ("zero_length.wav", "zero-length"),
        ("corrupt.wav", "not a readable audio file"),
        ("notes.txt", "not a readable audio file"),
    ],
)
def test_bad_files_raise_clear_errors(audio_dir: Path, name: str, message: str) -> None:
    with pytest.raises(AudioReadError, match=message) as err:
        load_audio(audio_dir / name)
    assert name in str(err.value)


def test_silence_detection(audio_dir: Path) -> None:
    assert is_silent(load_audio(audio_dir / "silence.wav"))
    assert not is_silent(load_audio(audio_dir / "speech.wav"))


def test_find_audio_files_recursive(audio_dir: Path) -> None:
    names = {p.name for p in find_audio_files(audio_dir)}
    assert {"speech.wav", "stereo44k.flac", "clip.ogg", "notes.txt"} <= names
    with pytest.raises(FileNotFoundError, match="not a directory"):
        find_audio_files(audio_dir / "nope")


def test_manifest_roundtrip_relative_paths(tmp_path: Path, audio_dir: Path) -> None:
    target = audio_dir / "speech.wav"
    m = write_manifest(audio_dir / "m.jsonl", [Utterance(str(target), 1.5, "Turn left")], relative=True)
    assert json.loads(m.read_text())["audio_filepath"] == "speech.wav"
    (u,) = read_manifest(m)
    assert Path(u.audio_filepath) == target.resolve() and u.duration == 1.5 and u.text == "Turn left"


def test_manifest_csv_and_missing_duration(tmp_path: Path, audio_dir: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text(f"audio_filepath,text\n{audio_dir / 'speech.wav'},hello there\n")
    (u,) = read_manifest(csv)
    assert u.duration == pytest.approx(1.5) and u.text == "hello there"


def test_manifest_bad_json_names_file_and_line(tmp_path: Path) -> None:
    m = tmp_path / "bad.jsonl"
    m.write_text(
        '{"audio_filepath": "a.wav", "duration": 1.0, "text": "ok"}\n\n{"audio_filepath": "b.wav", oops}\n'
    )
    with pytest.raises(ManifestError, match=r"bad\.jsonl:3: not valid JSON"):
        read_manifest(m)
    m.write_text('{"audio_filepath": "a.wav"}\n')
    with pytest.raises(ManifestError, match=r"bad\.jsonl:1: missing field\(s\) \['text'\]"):
        read_manifest(m)
    m.write_text('{"audio_filepath": "a.wav", "text": "x", "duration": "long"}\n')
    with pytest.raises(ManifestError, match=r"bad\.jsonl:1: duration 'long' is not a number"):
        read_manifest(m)
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "nope.jsonl")
