"""A minimal ctypes driver for eSpeak NG (shipped by the ``espeakng-loader`` wheel).

Only what the synthetic corpus needs: pick a voice (``"en-us+m3"``), set rate and pitch, and
synthesise a sentence into a 16-bit mono waveform at the engine's native rate (22,050 Hz).
The library keeps global state, so one :class:`ESpeak` per process; calls are serialised.

Generated voices: :func:`voice_data_dir` makes a private copy of the wheel's ``espeak-ng-data`` (symbolic
links, so no space) whose ``voices/!v`` folder also holds voice-variant files written by the caller;
``ESpeak.get(data_dir)`` then speaks ``"en-us+<file name>"`` with them.
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

import numpy as np

# espeak_AUDIO_OUTPUT: retrieve samples through the synth callback, play nothing.
_AUDIO_OUTPUT_RETRIEVAL = 1
# espeak_PARAMETER ids
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EE_OK = 0

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class ESpeakError(RuntimeError):
    """eSpeak NG could not be loaded or refused a request."""


class ESpeak:
    """Process-wide eSpeak NG engine in retrieval mode.

    Example:
        >>> engine = ESpeak.get()
        >>> wav = engine.synth("turn left", voice="en-us+m3", rate=170, pitch=50)  # int16, (N,)
    """

    _instance: ESpeak | None = None
    _lock = threading.Lock()

    def __init__(self, data_dir: str | os.PathLike[str] | None = None) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:  # pragma: no cover - dependency of the project
            raise ESpeakError("the synthetic corpus needs the pip package 'espeakng-loader'") from exc
        self.data_dir = str(data_dir) if data_dir is not None else None
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        data = (self.data_dir or espeakng_loader.get_data_path()).encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_RETRIEVAL, 0, data, 0)
        if rate <= 0:
            raise ESpeakError(f"espeak_Initialize failed (data path {data.decode()})")
        self.sample_rate: int = int(rate)
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._on_samples)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def get(cls, data_dir: str | os.PathLike[str] | None = None) -> ESpeak:
        """The process-wide engine (created on first use), reading ``data_dir`` (default: the wheel's data).

        Raises:
            ESpeakError: the engine was already started in this process on another data folder (eSpeak NG
                cannot be re-initialised; the corpus renders every shard in a fresh process).
        """
        want = str(data_dir) if data_dir is not None else None
        with cls._lock:
            if cls._instance is None:
                cls._instance = ESpeak(want)
            elif cls._instance.data_dir != want:
                raise ESpeakError(f"eSpeak NG already runs on {cls._instance.data_dir}, not {want}")
            return cls._instance

    def _on_samples(self, wav: ctypes._Pointer, n: int, _events: int) -> int:
        if wav and n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0 = continue synthesis

    def synth(
        self, text: str, voice: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50
    ) -> np.ndarray:
        """Synthesise ``text``; returns int16 samples (N,) at :attr:`sample_rate`.

        Args:
            text: the sentence (UTF-8).
            voice: an eSpeak voice name, optionally with a variant: ``"en-gb-scotland+f2"``.
            rate: words per minute (80-450).
            pitch: base pitch 0-100.
            pitch_range: pitch range 0-100.
        """
        with self._lock:
            lib = self._lib
            if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
                raise ESpeakError(f"eSpeak NG has no voice {voice!r}")
            for pid, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range), (_VOLUME, 100)):
                if lib.espeak_SetParameter(pid, int(value), 0) != _EE_OK:
                    raise ESpeakError(f"eSpeak NG refused parameter {pid}={value}")
            self._chunks = []
            buf = ctypes.create_string_buffer(text.encode("utf-8"))
            err = lib.espeak_Synth(buf, len(buf), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if err != _EE_OK:
                raise ESpeakError(f"espeak_Synth failed with code {err} for {text!r}")
            lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        if not chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(chunks).astype(np.int16, copy=False)


def voice_data_dir(target: str | os.PathLike[str], voices: dict[str, str]) -> Path:
    """Make ``target`` an eSpeak NG data folder: links to every entry of the wheel's ``espeak-ng-data``, plus
    ``voices/!v/<name>`` files with the given texts (eSpeak NG voice-variant files) next to links to the
    stock variants. Returns ``target``.

    Args:
        target: a new folder (its path must stay under ~150 characters, eSpeak NG's limit).
        voices: ``{file name: voice file text}``.
    """
    import espeakng_loader

    src = Path(espeakng_loader.get_data_path())
    dst = Path(target)
    if len(str(dst)) > 150:
        raise ESpeakError(f"eSpeak NG data path too long ({len(str(dst))} characters): {dst}")
    (dst / "voices" / "!v").mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        if entry.name != "voices" and not (dst / entry.name).exists():
            (dst / entry.name).symlink_to(entry)
    for entry in (src / "voices").iterdir():
        if entry.name != "!v" and not (dst / "voices" / entry.name).exists():
            (dst / "voices" / entry.name).symlink_to(entry)
    for entry in (src / "voices" / "!v").iterdir():
        link = dst / "voices" / "!v" / entry.name
        if entry.name not in voices and not link.exists():
            link.symlink_to(entry)
    for name, text in voices.items():
        (dst / "voices" / "!v" / name).write_text(text)
    return dst
