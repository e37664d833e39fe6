"""ARPA files that would decode wrongly without saying so: NaN log-probabilities, a file cut inside an n-gram
section (fewer entries than its header says), and an upper-case LM (LibriSpeech's) for a lower-case model."""

from __future__ import annotations

from pathlib import Path

import pytest

from lstm_seq.audio.decoding.lm import write_arpa
from lstm_seq.audio.decoding.ngram import NGramLM
from lstm_seq.audio.decoding.setup import DecodingSetup
from lstm_seq.audio.vocab import CharVocab

TEXTS = ["turn left at the door", "go to the red car", "open the door", "go left"]


@pytest.fixture
def arpa(tmp_path: Path) -> Path:
    return write_arpa(tmp_path / "lm.arpa", TEXTS, order=3)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_a_complete_estimate_is_accepted(arpa: Path) -> None:
    lm = NGramLM.from_arpa(arpa)
    assert lm.order == 3 and "door" in lm.index
    assert DecodingSetup.from_arpa(arpa, CharVocab()).words


def test_nan_log_probabilities_are_refused(arpa: Path, tmp_path: Path) -> None:
    lines = _lines(arpa)
    first = lines.index("\\1-grams:") + 1
    nan = tmp_path / "nan.arpa"
    nan.write_text("\n".join("nan\t" + ln.split("\t", 1)[1] if i > first and "\t" in ln else ln
                             for i, ln in enumerate(lines)) + "\n")  # fmt: skip
    with pytest.raises(ValueError, match=rf"{nan}:{first + 2}: log-probability nan"):
        NGramLM.from_arpa(nan)
    with pytest.raises(ValueError, match="log-probability nan"):
        DecodingSetup.from_arpa(nan, CharVocab())  # checked when the run starts, not at test time


def test_a_file_cut_inside_its_bigrams_is_refused(arpa: Path, tmp_path: Path) -> None:
    lines = _lines(arpa)
    cut = tmp_path / "cut.arpa"
    cut.write_text(
        "\n".join(lines[: lines.index("\\2-grams:") + 4]) + "\n"
    )  # 3 bigrams, no trigrams, no \end\
    with pytest.raises(
        ValueError, match=r"cut\.arpa: the header says \d+ 2-grams, the \\2-grams: section has 3"
    ):
        NGramLM.from_arpa(cut)
    with pytest.raises(ValueError, match=r"cut\.arpa: the header says"):
        DecodingSetup.from_arpa(cut, CharVocab())


def test_an_upper_case_lm_is_refused_with_a_word_about_case(arpa: Path, tmp_path: Path) -> None:
    upper = tmp_path / "upper.arpa"
    upper.write_text(arpa.read_text().upper().replace("\\DATA\\", "\\data\\").replace("NGRAM", "ngram")
                     .replace("-GRAMS:", "-grams:").replace("\\END\\", "\\end\\"))  # fmt: skip
    assert "DOOR" in NGramLM.from_arpa(upper).index  # a valid ARPA file
    with pytest.raises(ValueError, match=r"upper case \(e\.g\. '.*'\).*lower-case the file"):
        DecodingSetup.from_arpa(upper, CharVocab())
