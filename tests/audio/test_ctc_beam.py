"""The torch CTC beam search (lexicon trie + word n-gram LM): LM scores, decoding, batching, flashlight parity."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lstm_seq.audio.decoding.ctc_beam import CTCBeamSearch
from lstm_seq.audio.decoding.decode import BeamConfig
from lstm_seq.audio.decoding.lexicon import LexiconTrie
from lstm_seq.audio.decoding.lm import write_arpa
from lstm_seq.audio.decoding.ngram import NGramLM
from lstm_seq.audio.decoding.setup import DecodingSetup
from lstm_seq.audio.vocab import CharVocab
from tests._env import clean_env

TEXTS = [
    "turn left at the door",
    "turn right at the red door",
    "go to the red car",
    "the red car is big",
    "open the door",
    "go left",
    "turn to the car",
]
V = CharVocab()
HAS_FLASHLIGHT = importlib.util.find_spec("flashlight") is not None


def arpa_reference(path: Path, history: list[str], word: str) -> float:
    """log10 p(word | history) by the ARPA back-off rule, straight from the file's text."""
    table: dict[tuple[str, ...], tuple[float, float]] = {}
    order = 0
    for line in path.read_text().splitlines():
        if line.startswith("\\") and line.endswith("-grams:"):
            order = int(line[1])
        elif order and line.strip() and not line.startswith("\\"):
            parts = line.split("\t")
            table[tuple(parts[1].split())] = (float(parts[0]), float(parts[2]) if len(parts) > 2 else 0.0)
    hist = tuple(history)
    backoff = 0.0
    while True:
        if (*hist, word) in table:
            return backoff + table[(*hist, word)][0]
        if not hist:
            return backoff + table[("<unk>",)][0]
        backoff += table.get(hist, (0.0, 0.0))[1]
        hist = hist[1:]


def emissions(text: str, frames_per_char: int = 2, floor: float = -9.0) -> torch.Tensor:
    """(T, V) log-posteriors that spell ``text`` (each symbol held, then a blank)."""
    ids = [i for ch in text for i in [V.encode(ch)[0]] * frames_per_char + [V.blank]]
    lp = torch.full((len(ids), len(V)), floor)
    lp[torch.arange(len(ids)), torch.tensor(ids)] = 0.0
    return lp.log_softmax(-1)


def batch(*items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([x.shape[0] for x in items])
    out = torch.full((len(items), int(lengths.max()), len(V)), -30.0)
    for i, x in enumerate(items):
        out[i, : x.shape[0]] = x
    return out, lengths


@pytest.fixture(scope="module")
def arpa(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_arpa(tmp_path_factory.mktemp("lm") / "lm.arpa", TEXTS, order=3)


def test_ngram_scores_follow_the_arpa_backoff_rule(arpa: Path) -> None:
    lm = NGramLM.from_arpa(arpa)
    words = [*sorted({w for t in TEXTS for w in t.split()}), "</s>", "zebra"]
    histories = [["<s>"], ["<s>", "turn"], ["turn", "left"], ["red", "door"], ["the", "car"], ["go", "zebra"]]
    for hist in histories:
        ids = torch.tensor([[-1] * (2 - len(hist)) + [lm.word_id(w) for w in hist]])
        ctx = lm.context_ids(ids)
        got = lm.score(
            [(a[..., None], b[..., None]) for a, b in ctx], torch.tensor([[lm.word_id(w) for w in words]])
        )
        want = [arpa_reference(arpa, hist, w if w in lm.index else "<unk>") for w in words]
        assert got[0].tolist() == pytest.approx(want, abs=1e-5), hist
    # a listed trigram is taken directly, an unlisted one backs off (both occur above)
    assert ("turn", "left", "at") in {tuple(t.split()[i : i + 3]) for t in TEXTS for i in range(3)}


def test_ngram_rejects_a_file_that_is_not_arpa(tmp_path: Path) -> None:
    bad = tmp_path / "bad.arpa"
    bad.write_text("\\data\\\nngram 1=2\n\n\\1-grams:\nnot-a-number hello\n")
    with pytest.raises(ValueError, match=r"bad\.arpa:5: not an ARPA 1-gram line"):
        NGramLM.from_arpa(bad)


def test_trie_smears_the_best_unigram_below_each_node(arpa: Path) -> None:
    lm = NGramLM.from_arpa(arpa)
    words = ["the", "to", "turn"]
    trie = LexiconTrie(words, [V.encode(w) for w in words], len(V), lm)
    t = int(trie.child[0, V.encode("t")[0]])
    start = torch.tensor([[-1, lm.bos]])
    uni = {w: arpa_reference(arpa, ["<s>"], w) for w in words}
    assert float(trie.smear[t]) == pytest.approx(max(uni.values()), abs=1e-5)
    th = int(trie.child[t, V.encode("h")[0]])
    assert int(trie.word[int(trie.child[th, V.encode("e")[0]])]) == 0 and float(trie.smear[0]) == 0.0
    assert lm.context_ids(start)[0][0].item()


def test_decodes_lexicon_words_and_the_lm_decides_between_homophone_spellings(arpa: Path) -> None:
    dec = DecodingSetup.from_texts(TEXTS).decoder(V, BeamConfig(beam_size=16), arpa.parent / "d")
    x, n = batch(emissions("turn left at the door"), emissions("go to the red car"))
    assert dec(x, n) == ["turn left at the door", "go to the red car"]
    # a misspelt word is mapped onto the lexicon
    x, n = batch(emissions("open the dor"))
    assert dec(x, n) == ["open the door"]
    # an acoustically ambiguous word ("car" vs "door" equally likely) is settled by the LM context
    amb = emissions("the red car is big")
    c, d = V.encode("c")[0], V.encode("d")[0]
    t_c = int((amb.argmax(-1) == c).nonzero()[0])
    mix = amb.clone()
    mix[t_c] = torch.full((len(V),), -9.0)
    mix[t_c, c] = mix[t_c, d] = math.log(0.5)
    mix = mix.log_softmax(-1)
    x, n = batch(mix)
    no_lm = DecodingSetup.from_texts(TEXTS).decoder(
        V, BeamConfig(beam_size=16, lm_weight=0.0), arpa.parent / "e"
    )
    assert dec(x, n) == ["the red car is big"]
    assert no_lm(x, n)[0].split()[:2] == ["the", "red"]


def test_batched_equals_one_at_a_time_and_padding_is_ignored(arpa: Path) -> None:
    torch.manual_seed(0)
    dec = DecodingSetup.from_texts(TEXTS).decoder(V, BeamConfig(beam_size=8), arpa.parent / "b")
    items = [(emissions(t) + 0.8 * torch.randn(1)).log_softmax(-1) for t in TEXTS]
    noisy = [(x + 2.0 * torch.randn_like(x)).log_softmax(-1) for x in items]
    x, n = batch(*noisy)
    together = dec(x, n)
    alone = [dec(*batch(y))[0] for y in noisy]
    assert together == alone
    assert len(set(together)) > 3  # the noise did not make every utterance decode alike


def test_free_spelling_without_lexicon_keeps_any_characters(tmp_path: Path) -> None:
    free = DecodingSetup.from_texts([]).decoder(
        V, BeamConfig(beam_size=8, lexicon=False, lm_order=0, lm_weight=0.0), tmp_path
    )
    x, n = batch(emissions("zebra's dor"), emissions("aa bb"))
    assert free(x, n) == ["zebra's dor", "aa bb"]


def test_nbest_is_sorted_and_distinct(arpa: Path) -> None:
    lm = NGramLM.from_arpa(arpa)
    words = sorted({w for t in TEXTS for w in t.split()})
    trie = LexiconTrie(words, [V.encode(w) for w in words], len(V), lm)
    search = CTCBeamSearch(len(V), V.blank, V.encode(" ")[0], list(V.tokens), trie, lm, beam_size=16)
    # posteriors that mix two sentences of the same length: several word sequences are plausible
    a, b = emissions("open the door"), emissions("go to the car")
    x = torch.logaddexp(a + math.log(0.6), b + math.log(0.4))
    hyps = search.search(*batch(x), nbest=5)[0]
    scores = [h.score for h in hyps]
    assert hyps[0].text == "open the door" and len(hyps) >= 2
    assert scores == sorted(scores, reverse=True)
    assert len({h.text for h in hyps}) == len(hyps)
    assert all(w in words for h in hyps for w in h.words)


@pytest.mark.skipif(not HAS_FLASHLIGHT, reason="flashlight-text (the optional extra) is not installed")
def test_agrees_with_flashlight_on_noisy_emissions(arpa: Path) -> None:
    torch.manual_seed(2)
    cfg = dict(beam_size=20, lm_weight=1.5, word_score=0.5)
    ours = DecodingSetup.from_texts(TEXTS).decoder(V, BeamConfig(**cfg), arpa.parent / "o")
    theirs = DecodingSetup.from_texts(TEXTS).decoder(
        V, BeamConfig(**cfg, backend="flashlight"), arpa.parent / "f"
    )
    noisy = [(emissions(t) + 2.5 * torch.randn(len(emissions(t)), len(V))).log_softmax(-1) for t in TEXTS * 3]
    x, n = batch(*noisy)
    a, b = ours(x, n), theirs(x, n)
    agree = sum(p == q for p, q in zip(a, b, strict=True))
    assert agree >= len(a) - 2, list(zip(a, b, strict=True))


def test_beam_search_works_with_flashlight_hidden(tmp_path: Path) -> None:
    """A venv without flashlight-text: a package of that name that cannot be imported shadows it."""
    hide = tmp_path / "hide" / "flashlight"
    hide.mkdir(parents=True)
    (hide / "__init__.py").write_text("raise ImportError('flashlight-text is not installed')\n")
    code = (
        "import torch, sys\n"
        "from tests.audio.test_ctc_beam import TEXTS, V, batch, emissions\n"
        "from lstm_seq.audio.decoding.decode import BeamConfig\n"
        "from lstm_seq.audio.decoding.setup import DecodingSetup\n"
        f"dec = DecodingSetup.from_texts(TEXTS).decoder(V, BeamConfig(beam_size=8), {str(tmp_path / 'w')!r})\n"
        "print(dec(*batch(emissions('go to the red car')))[0])\n"
        "try:\n"
        f"    DecodingSetup.from_texts(TEXTS).decoder(V, BeamConfig(backend='flashlight'), {str(tmp_path / 'f')!r})\n"
        "except ImportError as exc:\n"
        "    print('flashlight:', exc)\n"
        "print('flashlight' in sys.modules and sys.modules['flashlight'] is not None)\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = clean_env(pythonpath=(hide.parent,))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root, timeout=120
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "go to the red car"
    assert lines[1].startswith("flashlight: decode.backend=flashlight needs flashlight-text")
    assert lines[2] == "False"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_equals_cpu(arpa: Path) -> None:
    torch.manual_seed(3)
    dec = DecodingSetup.from_texts(TEXTS).decoder(V, BeamConfig(beam_size=16), arpa.parent / "g")
    noisy = [(emissions(t) + 2.0 * torch.randn(len(emissions(t)), len(V))).log_softmax(-1) for t in TEXTS]
    x, n = batch(*noisy)
    assert dec(x.cuda(), n.cuda()) == dec(x, n)


def test_ctc_beam_search_refuses_beam_size_below_one() -> None:
    with pytest.raises(ValueError, match="beam_size must be ≥ 1, got 0"):
        CTCBeamSearch(3, 0, 1, ["_", " ", "a"], None, None, beam_size=0)
