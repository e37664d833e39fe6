"""Transcribe every audio file under a folder into ``transcripts.jsonl`` (``pipelines.asr.transcribe``).

One JSON object per file: ``{"path", "text", "duration"}``, or ``{"path", "error"}`` for a file that cannot be read
(the run goes on). The work is :class:`~lstm_seq.audio.recognizer.Recognizer`'s: files are batched together, long
ones cut into chunks at their quietest frames; rows are written as each group of files is done, so an
interrupted run keeps what it finished, and only whole rows: a write that fails (a full disk) cuts the file back to
its last whole row and stops with an error naming it.
"""

from __future__ import annotations

import logging
import os

from lstm_seq.audio.recognizer import Recognizer
from lstm_seq.outputs import JsonlWriter

log = logging.getLogger(__name__)


def transcribe_to_jsonl(
    recognizer: Recognizer,
    audio_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    batch_size: int = 16,
    word_timestamps: bool = False,
) -> dict[str, int]:
    """Write ``transcripts.jsonl`` for every audio file under ``audio_dir`` (recursively, sorted); returns
    ``{"files", "transcribed", "errors"}``."""
    counts = {"files": 0, "transcribed": 0, "errors": 0}
    with JsonlWriter(out_path) as out:  # whole rows only, even when the disk fills up
        for result in recognizer.iter_transcribe(
            audio_dir, batch_size=batch_size, word_timestamps=word_timestamps
        ):
            counts["files"] += 1
            counts["transcribed" if result.ok else "errors"] += 1
            if not result.ok:
                log.warning("cannot transcribe %s", result.error)
            out.write(result.to_dict())
    return counts
