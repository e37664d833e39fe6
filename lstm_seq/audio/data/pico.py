"""SVOX Pico, the second synthesis engine of the embedded corpus (the ``py-nanotts`` wheel, Apache-2.0).

Pico is an HMM-based synthesiser whose two English voices (``en-US``, ``en-GB``) were each built
from one real speaker's recordings; the voice files ship inside the wheel, so nothing is downloaded. The wheel
exists for Linux x86_64 and aarch64 only: elsewhere :func:`available` is False and the corpus is built from the
other engines (:func:`lstm_seq.audio.data.synth.build_corpus` says so). Output: 16-bit mono at 16 kHz; the same
text, voice, speed and pitch give the same samples in any process.
"""

from __future__ import annotations

import importlib.util
import os
from importlib import metadata

import numpy as np

VOICES = ("en-US", "en-GB")
SAMPLE_RATE = 16000
MISSING = (
    "SVOX Pico is not installed here (pip package 'py-nanotts', Linux x86_64/aarch64 wheels only; "
    "`pip install py-nanotts` where it exists)"
)


def available() -> bool:
    """Whether the ``py_nanotts`` package can be imported here (checked without importing it)."""
    return importlib.util.find_spec("py_nanotts") is not None


def version() -> str:
    """The installed ``py-nanotts`` version ("" when missing)."""
    try:
        return metadata.version("py-nanotts")
    except metadata.PackageNotFoundError:
        return ""


def synth(text: str, voice: str, speed: float = 1.0, pitch: float = 1.0) -> np.ndarray:
    """Speak ``text``; returns int16 samples (N,) at :data:`SAMPLE_RATE`.

    Args:
        text: the sentence.
        voice: one of :data:`VOICES`.
        speed: speaking-rate multiplier (0.2–5).
        pitch: pitch multiplier (0.5–2).
    """
    if voice not in VOICES:
        raise ValueError(f"SVOX Pico has no English voice {voice!r} (voices: {', '.join(VOICES)})")
    if not available():
        raise RuntimeError(MISSING)
    from py_nanotts import NanoTTS

    # Pico's output depends on what it synthesised before in the same process (its state is not reset between
    # calls), so every utterance is spoken by a fresh fork that has never used it: then the samples depend only
    # on (text, voice, speed, pitch).
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: speak, send the samples, leave without running the parent's clean-up
        code = 0
        try:
            pcm = NanoTTS().speak(text, voice=voice, speed=float(speed), pitch=float(pitch))
            view = memoryview(pcm)
            while view:
                view = view[os.write(write, view) :]
        except BaseException:
            code = 1
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        pcm = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(
            f"SVOX Pico failed on {text!r} (voice {voice}, speed {speed:.3f}, pitch {pitch:.3f})"
        )
    return np.frombuffer(pcm, dtype="<i2").astype(np.int16)
