"""A word n-gram language model: its numbers (:class:`NGramTable`, also ARPA text both ways) and the same model
in tensors (:class:`NGramLM`), scored in batches on any device.

The back-off rule of the ARPA format (the one KenLM applies), in log10 as the file stores it::

    log p(w | h) = log p*(h w)                       if the n-gram "h w" is listed
                 = bow(h) + log p(w | h⁻)            otherwise (h⁻ drops the oldest word of h)

with ``bow(h) = 0`` for a history that is not listed. A table comes from an ARPA text (:meth:`NGramTable.from_arpa`)
or straight from transcripts (:func:`lstm_seq.audio.decoding.lm.estimate`); ARPA text is written from it only
for files (:meth:`NGramTable.to_arpa`: an export, the flashlight backend). In :class:`NGramLM` every k-gram is
one int64 key, ``id(prefix) · V + word`` (``id`` of a unigram = its word id, of a longer n-gram = its row in
its order's sorted table), so a lookup is one :func:`torch.searchsorted` over a sorted key tensor.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from lstm_seq.text_files import read_utf8

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


@dataclass(frozen=True)
class NGramTable:
    """A back-off n-gram model as numbers, the content of an ARPA file without its text.

    Attributes:
        grams: per order n (index n − 1), ``{n-gram: (log10 p, log10 back-off)}`` in the order of the ARPA
            section (back-off 0.0 where the file gives none).
    """

    grams: list[dict[tuple[str, ...], tuple[float, float]]]

    @property
    def order(self) -> int:
        return len(self.grams)

    def unigrams(self) -> list[str]:
        """The words of the 1-grams, ``<s>``, ``</s>`` and ``<unk>`` included."""
        return [g[0] for g in self.grams[0]]

    @classmethod
    def from_arpa(cls, text: str, path: str | os.PathLike[str]) -> NGramTable:
        """Every section of an ARPA text; the whole text is read, so a bad line of any order raises
        :class:`ValueError` naming ``path:line`` (``path``: where the text came from)."""
        return cls(_parse_arpa(text, Path(path)))

    def to_arpa(self) -> str:
        """The ARPA text of this table (log10 values with 6 decimals; a back-off column on every n-gram below
        the highest order that does not end in ``</s>``)."""
        lines = ["", "\\data\\"]
        lines += [f"ngram {n}={len(g)}" for n, g in enumerate(self.grams, 1)]
        for n, grams in enumerate(self.grams, 1):
            lines += ["", f"\\{n}-grams:"]
            for gram, (lp, bow) in grams.items():
                row = f"{lp:.6f}\t{' '.join(gram)}"
                if n < self.order and gram[-1] != EOS:
                    row += f"\t{bow:.6f}"
                lines.append(row)
        lines += ["", "\\end\\", ""]
        return "\n".join(lines)


class NGramLM:
    """An n-gram model as sorted key tensors.

    Args:
        table: the model's numbers (:meth:`from_arpa` reads them from a file).

    Attributes:
        words: the vocabulary (word id = position); :attr:`bos`, :attr:`eos`, :attr:`unk` are ids.
        order: N of the N-gram model.
    """

    def __init__(self, table: NGramTable) -> None:
        grams = table.grams
        self.order = table.order
        unigrams = grams[0]
        self.words = sorted({g[0] for g in unigrams} | {UNK, BOS, EOS})
        self.index = {w: i for i, w in enumerate(self.words)}
        self.bos, self.eos, self.unk = self.index[BOS], self.index[EOS], self.index[UNK]
        vocab = len(self.words)
        unk_lp = unigrams.get((UNK,), (-99.0, 0.0))[0]
        logp1 = torch.full((vocab,), unk_lp, dtype=torch.float64)
        bow1 = torch.zeros(vocab, dtype=torch.float64)
        for (w,), (lp, bow) in unigrams.items():
            logp1[self.index[w]], bow1[self.index[w]] = lp, bow
        self._tables: list[tuple[Tensor, Tensor, Tensor]] = [(torch.arange(vocab), logp1, bow1)]
        ids: dict[tuple[str, ...], int] = {(w,): self.index[w] for w in self.words}
        for n in range(2, self.order + 1):
            rows = []
            for gram, (lp, bow) in grams[n - 1].items():
                prefix = ids.get(gram[:-1])
                if prefix is None or gram[-1] not in self.index:
                    continue  # an n-gram whose prefix is not listed can never be reached
                rows.append((prefix * vocab + self.index[gram[-1]], lp, bow, gram))
            rows.sort(key=lambda r: r[0])
            ids = {r[3]: i for i, r in enumerate(rows)}
            keys = torch.tensor([r[0] for r in rows], dtype=torch.int64)
            self._tables.append(
                (
                    keys,
                    torch.tensor([r[1] for r in rows], dtype=torch.float64),
                    torch.tensor([r[2] for r in rows]),
                )
            )
        self._device_tables: dict[torch.device, list[tuple[Tensor, Tensor, Tensor]]] = {}

    @classmethod
    def from_arpa(cls, path: str | os.PathLike[str]) -> NGramLM:
        """The model of an ARPA file (errors name ``path`` and the line)."""
        return cls(NGramTable.from_arpa(read_utf8(Path(path)), path))

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def word_id(self, word: str) -> int:
        """The id of ``word``, or that of ``<unk>``."""
        return self.index.get(word, self.unk)

    def tables(self, device: torch.device) -> list[tuple[Tensor, Tensor, Tensor]]:
        """Per order: (sorted keys (M,), log10 p (M,), log10 back-off (M,)) on ``device`` (float32)."""
        if device not in self._device_tables:
            self._device_tables[device] = [
                (k.to(device), lp.float().to(device), b.float().to(device)) for k, lp, b in self._tables
            ]
        return self._device_tables[device]

    def _find(self, order: int, prefix: Tensor, word: Tensor, device: torch.device) -> tuple[Tensor, Tensor]:
        """Rows of the ``order``-grams ``(prefix id, word)`` (any shape): (found (bool), row (int64))."""
        keys = self.tables(device)[order - 1][0]
        if keys.numel() == 0:
            return torch.zeros_like(word, dtype=torch.bool), torch.zeros_like(word)
        key = prefix * self.vocab_size + word
        row = torch.searchsorted(keys, key.reshape(-1)).reshape(key.shape).clamp_(max=keys.numel() - 1)
        return (keys[row] == key) & (prefix >= 0) & (word >= 0), row

    def context_ids(self, history: Tensor) -> list[tuple[Tensor, Tensor]]:
        """For histories ``(..., N-1)`` of word ids (newest last, −1 = none): per suffix length j = 1..N-1,
        (listed (bool ...), id of the j-word suffix in its order's table (int64 ...))."""
        device = history.device
        hlen = history.shape[-1]
        # grams[p]: (listed, id) of the gram of the current length that ends at position p
        grams = [(history[..., p] >= 0, history[..., p]) for p in range(hlen)]
        out = [grams[-1]]
        for j in range(2, hlen + 1):
            grams = [(None, None)] * (j - 1) + [
                _and(grams[p - 1][0], *self._find(j, grams[p - 1][1], history[..., p], device))
                for p in range(j - 1, hlen)
            ]
            out.append(grams[-1])
        return out

    def score(self, contexts: list[tuple[Tensor, Tensor]], word: Tensor) -> Tensor:
        """log10 p(word | history) with :meth:`context_ids` of the histories (broadcast against ``word``).

        Args:
            contexts: from :meth:`context_ids` of histories of shape S.
            word: word ids, shape broadcastable with S (e.g. S + (1,) against contexts of S + (1,)).
        Returns:
            log10 probabilities, the broadcast shape.
        """
        device = word.device
        tables = self.tables(device)
        logp1 = tables[0][1]
        result = logp1[word.clamp(min=0)]
        shape = result.shape
        done = torch.zeros(shape, dtype=torch.bool, device=device)
        backoff = torch.zeros(shape, dtype=result.dtype, device=device)
        for j in range(len(contexts), 0, -1):  # the longest history first
            listed, ctx = (t.expand(shape) for t in contexts[j - 1])
            found, row = self._find(j + 1, torch.where(listed, ctx, -1), word.expand(shape), device)
            take = found & ~done
            result = torch.where(take, backoff + tables[j][1][row], result)
            done |= take
            bow = tables[j - 1][2][ctx.clamp(min=0)]
            backoff = torch.where(listed & ~done, backoff + bow, backoff)
        return torch.where(done, result, backoff + logp1[word.clamp(min=0)])


def _and(listed: Tensor, found: Tensor, row: Tensor) -> tuple[Tensor, Tensor]:
    ok = listed & found
    return ok, torch.where(ok, row, -1)


def _parse_arpa(
    text: str, path: Path, max_order: int | None = None
) -> list[dict[tuple[str, ...], tuple[float, float]]]:
    """Per order (up to ``max_order``): {n-gram: (log10 p, log10 back-off)} of an ARPA text read from ``path``.

    Every section is checked against the ``ngram N=count`` header (sections past ``max_order`` are counted,
    not parsed): a file cut short, or one whose header names a section it lacks, is refused. So is a NaN or
    positive log-probability and a back-off that is not finite. Errors name the file (and line)."""
    grams: list[dict[tuple[str, ...], tuple[float, float]]] = []
    declared: dict[int, int] = {}  # order -> count from the \data\ header
    seen: dict[int, int] = {}  # order -> entry lines in its section
    section = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line == "\\data\\":
            continue
        if line.startswith("ngram ") and section == 0:
            order, _, count = line[6:].partition("=")
            try:
                declared[int(order)] = int(count)
            except ValueError:
                raise ValueError(f"{path}:{lineno}: not an ARPA header line: {raw!r}") from None
            continue
        if line == "\\end\\":
            break
        if line.startswith("\\") and line.endswith("-grams:"):
            try:
                section = int(line[1:].split("-", 1)[0])
            except ValueError:
                raise ValueError(f"{path}:{lineno}: not an ARPA section header: {raw!r}") from None
            seen.setdefault(section, 0)
            if max_order is None or section <= max_order:
                grams += [{} for _ in range(section - len(grams))]
            continue
        if section == 0:
            continue
        seen[section] += 1
        if max_order is not None and section > max_order:
            continue
        parts = line.split()
        try:
            lp = float(parts[0])
            gram = tuple(parts[1 : 1 + section])
            bow = float(parts[1 + section]) if len(parts) > 1 + section else 0.0
        except (ValueError, IndexError) as exc:
            raise ValueError(f"{path}:{lineno}: not an ARPA {section}-gram line: {raw!r}") from exc
        if len(gram) != section:
            raise ValueError(f"{path}:{lineno}: not an ARPA {section}-gram line: {raw!r}")
        if math.isnan(lp) or lp > 0 or not math.isfinite(bow):  # log10 p ≤ 0 (-inf: p = 0); back-off finite
            raise ValueError(
                f"{path}:{lineno}: log-probability {lp} or back-off {bow} is not a valid log10 value"
            )
        grams[section - 1][gram] = (lp, bow)
    if not grams or not grams[0]:
        raise ValueError(f"{path}: no \\1-grams: section (not an ARPA language model)")
    for order, count in sorted(declared.items()):
        if seen.get(order, 0) != count:
            raise ValueError(
                f"{path}: the header says {count} {order}-grams, the \\{order}-grams: section has "
                f"{seen.get(order, 0)} (a file cut short?)"
            )
    return grams
