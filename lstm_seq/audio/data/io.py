"""Reading audio: any format libsndfile reads (wav, flac, ogg, …), stereo → mono, any rate → one rate.

Every failure raises :class:`AudioReadError` naming the file and the reason, so a caller can skip
the file and go on.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".w64")


class AudioReadError(RuntimeError):
    """A file cannot be read as audio; the message names it and says why."""


@dataclass(frozen=True)
class AudioInfo:
    """Header facts of an audio file (no samples read)."""

    duration: float  # seconds
    sample_rate: int
    channels: int
    frames: int


def _check_file(path: Path) -> None:
    try:
        if not path.exists():
            raise AudioReadError(f"{path}: file not found")
        if not path.is_file():
            raise AudioReadError(f"{path}: not a regular file")
        size = path.stat().st_size
    except OSError as exc:  # e.g. a name too long, permission denied on a parent folder
        raise AudioReadError(f"{path}: cannot access ({exc.strerror or exc})") from exc
    if size == 0:
        raise AudioReadError(f"{path}: empty file (0 bytes)")


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Duration, rate and channels from the file header."""
    p = Path(path)
    _check_file(p)
    try:
        info = sf.info(str(p))
    except Exception as exc:  # libsndfile raises LibsndfileError/RuntimeError for non-audio bytes
        raise AudioReadError(f"{p}: not a readable audio file ({exc})") from exc
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioReadError(f"{p}: zero-length audio (no samples)")
    return AudioInfo(
        info.frames / info.samplerate, int(info.samplerate), int(info.channels), int(info.frames)
    )


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling of a mono float signal (N,) → (N·target/orig,); identity if equal."""
    if orig_sr == target_sr:
        return wav
    g = math.gcd(int(orig_sr), int(target_sr))
    return resample_poly(wav, target_sr // g, orig_sr // g).astype(np.float32, copy=False)


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int = 16000,
    start: float = 0.0,
    duration: float | None = None,
) -> np.ndarray:
    """Read ``path`` as mono float32 in [-1, 1] at ``sample_rate``.

    Args:
        path: an audio file.
        sample_rate: output rate; other rates are resampled.
        start: offset in seconds.
        duration: seconds to read from ``start`` (None = to the end).

    Returns:
        (N,) float32 waveform.

    Raises:
        AudioReadError: missing, empty, corrupt, non-audio or zero-length file.
    """
    p = Path(path)
    _check_file(p)
    try:
        with sf.SoundFile(str(p)) as f:
            sr = int(f.samplerate)
            if start > 0:
                f.seek(round(start * sr))
            frames = -1 if duration is None else round(duration * sr)
            data = f.read(frames=frames, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioReadError(f"{p}: not a readable audio file ({exc})") from exc
    if data.shape[0] == 0:
        raise AudioReadError(f"{p}: zero-length audio (no samples)")
    wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(wav)):
        raise AudioReadError(f"{p}: audio contains NaN or infinite samples")
    return np.ascontiguousarray(resample(wav, sr, sample_rate), dtype=np.float32)


MAX_CHANNELS = 8  # a 2-D waveform's channel axis is its shorter one, of at most this many channels
# integer PCM → float in [-1, 1): divide by the format's full scale (unsigned 8-bit is offset by 128)
_PCM_SCALE = {np.dtype(np.int8): 128.0, np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0}


def as_mono(wave: np.ndarray | object, allow_empty: bool = False) -> np.ndarray:
    """An in-memory waveform as mono float32 (N,): a numpy array or torch tensor (or anything
    ``np.asarray`` takes) of shape (N,), channels-first (C, N) or channels-last (N, C) — ``soundfile.read``'s
    layout — whose channels are averaged. The channel axis is the shorter one (at most
    :data:`MAX_CHANNELS`); a square 2-D array is refused as ambiguous. Integer PCM (int8, int16, int32,
    uint8) is scaled to [-1, 1); float samples are taken as they are. No samples is an error unless
    ``allow_empty`` (a streaming chunk).

    Raises:
        ValueError: another shape or dtype, no samples, NaN or infinite samples (the message says which).
    """
    x = wave.detach().cpu().numpy() if hasattr(wave, "detach") else np.asarray(wave)
    if x.dtype == np.uint8:
        x = (x.astype(np.float32) - 128.0) / 128.0
    elif x.dtype in _PCM_SCALE:
        x = x.astype(np.float32) / _PCM_SCALE[x.dtype]
    elif not np.issubdtype(x.dtype, np.floating):
        raise ValueError(
            f"waveform samples of dtype {x.dtype} are not audio: give float samples in [-1, 1] "
            "or int8/int16/int32/uint8 PCM"
        )
    if x.ndim == 2:
        short = int(np.argmin(x.shape))
        if x.shape[0] == x.shape[1] or x.shape[short] > MAX_CHANNELS:
            raise ValueError(
                f"cannot tell channels from samples in a waveform of shape {x.shape}: give (N,), (C, N) or "
                f"(N, C) with at most {MAX_CHANNELS} channels"
            )
        x = x.mean(short)
    if x.ndim != 1 or (x.size == 0 and not allow_empty):
        raise ValueError(f"a waveform must be a non-empty (N,), (C, N) or (N, C) array, got shape {x.shape}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError("the waveform holds NaN or infinite samples")
    return x


def is_silent(wav: np.ndarray, threshold: float = 1e-4) -> bool:
    """True when the peak amplitude is below ``threshold`` (digital silence)."""
    return wav.size == 0 or float(np.max(np.abs(wav))) < threshold


def find_audio_files(root: str | os.PathLike[str]) -> list[Path]:
    """Every regular file under ``root`` (recursively, sorted) that is not hidden and not inside a hidden
    folder (``.git/``, ``.ipynb_checkpoints/``): audio files and also others, so that non-audio files get
    reported, not silently ignored."""
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"audio_dir {base} is not a directory")
    return sorted(p for p in base.rglob("*") if p.is_file() and not is_hidden(p, base))


def is_hidden(path: Path, root: Path) -> bool:
    """True when ``path`` or a folder between ``root`` and it has a name starting with a dot."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)
