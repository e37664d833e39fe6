"""Transcribe every audio file under a folder into ``transcripts.jsonl`` (``mode=transcribe``).

One JSON object per file: ``{"path", "text", "duration"}``, or ``{"path", "error"}`` for a file that cannot be read
(the run goes on). The work is :class:`~lstm_seq.audio.recognizer.Recognizer`'s: files are batched together, long
ones cut into chunks at their quietest frames; rows are written and flushed as each group of files is done, so an
interrupted run keeps what it finished.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from lstm_seq.audio.recognizer import Recognizer

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
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    counts = {"files": 0, "transcribed": 0, "errors": 0}
    with out.open("w", encoding="utf-8") as fh:
        for result in recognizer.iter_transcribe(
            audio_dir, batch_size=batch_size, word_timestamps=word_timestamps
        ):
            counts["files"] += 1
            counts["transcribed" if result.ok else "errors"] += 1
            if not result.ok:
                log.warning("cannot transcribe %s", result.error)
            fh.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
            fh.flush()
    return counts
