"""Caption metrics computed the coco-caption way: corpus-level BLEU-1..4 (clipped n-gram counts over
several references, the "closest" reference length for the brevity penalty) and CIDEr-D (tf-idf n-gram
vectors with document frequencies from the reference sets, clipped hypothesis counts, a Gaussian length
penalty with sigma 6, times 10). Inputs are tokenised with :func:`lstm_seq.text.tokenize`
(lower-case, PTB-style, punctuation removed), the same as coco-caption's PTBTokenizer for plain text.

METEOR and SPICE need a Java runtime: :func:`java_metrics` computes them through pycocoevalcap when both
Java and that package are present, and otherwise returns nothing and says why in one line.
"""

from __future__ import annotations

import math
import shutil
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from itertools import pairwise
from pathlib import Path

from lstm_seq.text import tokenize

NGram = tuple[str, ...]


def _ngrams(words: Sequence[str], n: int) -> Counter[NGram]:
    counts: Counter[NGram] = Counter()
    for k in range(1, n + 1):
        for i in range(len(words) - k + 1):
            counts[tuple(words[i : i + k])] += 1
    return counts


def _check(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} reference sets")
    if not hyps:
        raise ValueError("no hypotheses to score")
    for i, r in enumerate(refs):
        if len(r) == 0:
            raise ValueError(f"hypothesis {i} has no reference captions")


def bleu(hyps: Sequence[str], refs: Sequence[Sequence[str]], max_n: int = 4) -> list[float]:
    """Corpus-level BLEU-1..``max_n``.

    Args:
        hyps: one hypothesis caption per image.
        refs: for each image, its reference captions (one or more).

    Returns:
        ``[bleu1, …, bleu_max_n]`` in [0, 1].
    """
    _check(hyps, refs)
    tiny, small = 1e-15, 1e-9
    guess = [0] * max_n
    correct = [0] * max_n
    test_len = ref_len = 0
    for hyp, rs in zip(hyps, refs, strict=True):
        h = tokenize(hyp)
        r_tok = [tokenize(r) for r in rs]
        max_counts: dict[NGram, int] = {}
        for r in r_tok:
            for g, c in _ngrams(r, max_n).items():
                max_counts[g] = max(max_counts.get(g, 0), c)
        # "closest" reference length; ties go to the shorter one.
        ref_len += min((abs(len(r) - len(h)), len(r)) for r in r_tok)[1]
        test_len += len(h)
        for g, c in _ngrams(h, max_n).items():
            correct[len(g) - 1] += min(max_counts.get(g, 0), c)
        for k in range(max_n):
            guess[k] += max(0, len(h) - k)
    ratio = (test_len + tiny) / (ref_len + small)
    brevity = math.exp(1 - 1 / ratio) if ratio < 1 else 1.0
    scores, log_sum = [], 0.0
    for k in range(max_n):
        log_sum += math.log((correct[k] + tiny) / (guess[k] + small))
        scores.append(math.exp(log_sum / (k + 1)) * brevity)
    return scores


def cider_d(hyps: Sequence[str], refs: Sequence[Sequence[str]], n: int = 4, sigma: float = 6.0) -> float:
    """Corpus CIDEr-D (the mean of per-image scores; document frequencies from all reference sets).

    Args:
        hyps: one hypothesis caption per image.
        refs: for each image, its reference captions.
    """
    _check(hyps, refs)
    hyp_counts = [_ngrams(tokenize(h), n) for h in hyps]
    ref_counts = [[_ngrams(tokenize(r), n) for r in rs] for rs in refs]
    df: Counter[NGram] = Counter()
    for rcs in ref_counts:
        df.update({g for rc in rcs for g in rc})
    log_docs = math.log(float(len(hyps)))

    def vec(counts: Counter[NGram]) -> tuple[list[dict[NGram, float]], list[float], int]:
        v: list[dict[NGram, float]] = [{} for _ in range(n)]
        norm = [0.0] * n
        length = 0
        for g, tf in counts.items():
            k = len(g) - 1
            w = float(tf) * (log_docs - math.log(max(1.0, df[g])))
            v[k][g] = w
            norm[k] += w * w
            if k == 1:
                length += tf
        return v, [math.sqrt(x) for x in norm], length

    total = 0.0
    for hc, rcs in zip(hyp_counts, ref_counts, strict=True):
        vh, nh, lh = vec(hc)
        score = [0.0] * n
        for rc in rcs:
            vr, nr, lr = vec(rc)
            delta = float(lh - lr)
            for k in range(n):
                val = sum(min(w, vr[k][g]) * vr[k][g] for g, w in vh[k].items() if g in vr[k])
                if nh[k] != 0 and nr[k] != 0:
                    val /= nh[k] * nr[k]
                score[k] += val * math.exp(-(delta**2) / (2 * sigma**2))
        total += sum(score) / n / len(rcs) * 10.0
    return total / len(hyps)


def caption_metrics(hyps: Sequence[str], refs: Sequence[Sequence[str]], prefix: str = "") -> dict[str, float]:
    """``{prefix + "bleu1"…"bleu4", prefix + "cider"}`` for a corpus."""
    out = {f"{prefix}bleu{k + 1}": s for k, s in enumerate(bleu(hyps, refs))}
    out[f"{prefix}cider"] = cider_d(hyps, refs)
    return out


def java_metrics(
    hyps: Sequence[str], refs: Sequence[Sequence[str]], prefix: str = ""
) -> tuple[dict[str, float], str | None]:
    """METEOR and SPICE through pycocoevalcap when a Java runtime and that package are present.

    Returns:
        ``(metrics, None)`` or ``({}, reason)`` with a one-line reason they were skipped.
    """
    if shutil.which("java") is None:
        return {}, "METEOR/SPICE skipped: no Java runtime on PATH"
    try:
        from pycocoevalcap.meteor.meteor import Meteor
        from pycocoevalcap.spice import spice as spice_module
        from pycocoevalcap.spice.spice import Spice
    except ImportError:
        return {}, "METEOR/SPICE skipped: pycocoevalcap is not installed (pip install pycocoevalcap)"
    gts: Mapping[int, list[str]] = {i: [" ".join(tokenize(r)) for r in rs] for i, rs in enumerate(refs)}
    res: Mapping[int, list[str]] = {i: [" ".join(tokenize(h)) or "<empty>"] for i, h in enumerate(hyps)}
    out: dict[str, float] = {}
    # SPICE needs Stanford CoreNLP, which pycocoevalcap would download: only use it when already there.
    corenlp = Path(str(spice_module.__file__)).parent / "lib" / "stanford-corenlp-3.6.0.jar"
    notes = [] if corenlp.exists() else [f"SPICE skipped: {corenlp} is absent (nothing is downloaded)"]
    try:
        out[f"{prefix}meteor"] = float(Meteor().compute_score(gts, res)[0])
        if corenlp.exists():
            out[f"{prefix}spice"] = float(Spice().compute_score(gts, res)[0])
    except Exception as exc:  # a broken Java install must not stop a run
        notes.append(f"METEOR/SPICE failed: {type(exc).__name__}: {exc}")
    return out, ("; ".join(notes) or None)


def mentioned_objects(
    caption: str, colours: Collection[str], shapes: Collection[str]
) -> list[tuple[str, str]]:
    """The ``(colour, shape)`` phrases a caption names, in order, repeats kept: every colour word directly
    followed by a shape word ("a big red circle" → ``[("red", "circle")]``)."""
    words = tokenize(caption)
    return [(a, b) for a, b in pairwise(words) if a in colours and b in shapes]


def _matches(truth: Counter[tuple[str, str]], said: Counter[tuple[str, str]]) -> tuple[int, int]:
    """``(shape_hits, pair_hits)``: objects whose shape is named (shapes matched as multisets, whatever the
    colour) and, of those, objects whose colour–shape phrase is named."""
    t_shapes: Counter[str] = Counter()
    s_shapes: Counter[str] = Counter()
    for (_, shape), c in truth.items():
        t_shapes[shape] += c
    for (_, shape), c in said.items():
        s_shapes[shape] += c
    return sum((t_shapes & s_shapes).values()), sum((truth & said).values())


def scene_confusion(
    caption: str,
    objects: Sequence[Mapping[str, object]],
    colours: Collection[str],
    shapes: Collection[str],
) -> dict[str, list[tuple[str, str]]]:
    """What one caption got wrong about one scene.

    Returns:
        ``colour_swaps``: ``(true colour, named colour)`` for shapes named with a wrong colour (per shape, the
        unmatched true colours paired in sorted order with the unmatched named ones); ``invented``:
        ``(colour, shape)`` phrases whose shape is named more often than the scene holds it (a wrong shape or
        an object that is not there); ``missed``: objects whose shape is named too rarely (a wrong shape or
        an object left out).
    """
    truth = Counter((str(o["colour"]), str(o["shape"])) for o in objects)
    said = Counter(mentioned_objects(caption, colours, shapes))
    extra_t, extra_s = truth - said, said - truth  # the phrases left after exact matches
    swaps: list[tuple[str, str]] = []
    invented: list[tuple[str, str]] = []
    missed: list[tuple[str, str]] = []
    for shape in sorted({s for _, s in extra_t} | {s for _, s in extra_s}):
        t = sorted(c for (c, s), k in extra_t.items() if s == shape for _ in range(k))
        n = sorted(c for (c, s), k in extra_s.items() if s == shape for _ in range(k))
        swaps += list(zip(t, n, strict=False))
        invented += [(c, shape) for c in n[len(t) :]]
        missed += [(c, shape) for c in t[len(n) :]]
    return {"colour_swaps": swaps, "invented": invented, "missed": missed}


def colour_confusions(
    hyps: Sequence[str],
    objects: Sequence[Sequence[Mapping[str, object]]],
    colours: Collection[str],
    shapes: Collection[str],
) -> dict[str, dict[str, int]]:
    """Summed over scenes, ``{true colour: {named colour: count}}`` of :func:`scene_confusion`'s colour swaps."""
    out: dict[str, dict[str, int]] = {}
    for hyp, objs in zip(hyps, objects, strict=True):
        for t, n in scene_confusion(hyp, objs, colours, shapes)["colour_swaps"]:
            out.setdefault(t, {})
            out[t][n] = out[t].get(n, 0) + 1
    return out


def object_metrics(
    hyps: Sequence[str],
    objects: Sequence[Sequence[Mapping[str, object]]],
    colours: Collection[str],
    shapes: Collection[str],
    prefix: str = "",
) -> dict[str, float]:
    """How well captions name the objects of scenes whose contents are known.

    An object counts as named when its "<colour> <shape>" phrase is in the caption; phrases are matched as
    multisets, so a caption that names one red circle names one of two red circles, not both.

    Args:
        hyps: one caption per image.
        objects: each image's objects, mappings with ``"colour"`` and ``"shape"`` (``captions.json`` records).
        colours, shapes: the words that make a phrase.

    Returns:
        ``object_recall``: named objects / all objects; ``exact_set``: images whose named phrases are exactly
        their objects (as a multiset); ``count_accuracy``: images whose caption names as many objects as they
        hold; ``repeat_rate``: images whose caption names some phrase more often than the image holds it;
        ``colour_accuracy``: of the objects whose shape is named (shapes matched as multisets), the fraction
        named with the right colour too; ``hallucination_rate``: of all named phrases, the fraction that are
        not in the image (beyond the multiset of its objects: a wrong colour or shape, or an extra object).
    """
    if len(hyps) != len(objects):
        raise ValueError(f"{len(hyps)} captions but {len(objects)} object lists")
    if not hyps:
        raise ValueError("no captions to score")
    named = total = exact = counted = repeated = shape_hits = said_total = 0
    for hyp, objs in zip(hyps, objects, strict=True):
        truth = Counter((str(o["colour"]), str(o["shape"])) for o in objs)
        said = Counter(mentioned_objects(hyp, colours, shapes))
        shapes_named, pairs_named = _matches(truth, said)
        named += pairs_named
        shape_hits += shapes_named
        said_total += sum(said.values())
        total += sum(truth.values())
        exact += said == truth
        counted += sum(said.values()) == sum(truth.values())
        repeated += any(c > 1 and c > truth[p] for p, c in said.items())
    n = len(hyps)
    return {
        f"{prefix}object_recall": named / total if total else float("nan"),
        f"{prefix}exact_set": exact / n,
        f"{prefix}count_accuracy": counted / n,
        f"{prefix}repeat_rate": repeated / n,
        f"{prefix}colour_accuracy": named / shape_hits if shape_hits else float("nan"),
        f"{prefix}hallucination_rate": (said_total - named) / said_total if said_total else 0.0,
    }


def novel_pair_recall(
    hyps: Sequence[str],
    objects: Sequence[Sequence[Mapping[str, object]]],
    held_out: Collection[tuple[str, str]],
) -> float:
    """A direct measure of composition: of all ``held_out`` colour–shape objects in the scored images, the
    fraction whose "<colour> <shape>" phrase appears in the image's caption (BLEU/CIDEr give much partial
    credit to a caption that names the colour and a wrong shape). NaN when no such object occurs.

    Args:
        hyps: one caption per image.
        objects: each image's ``objects`` records (``{"colour", "shape", ...}``, as in the scene corpus'
            ``captions.json``).
        held_out: the (colour, shape) pairs kept out of training, e.g.
            :func:`lstm_seq.vision.data.synth.held_out_pairs`.
    """
    total = hits = 0
    for hyp, objs in zip(hyps, objects, strict=True):
        words = f" {hyp} "
        for o in objs:
            if (o["colour"], o["shape"]) in held_out:
                total += 1
                hits += f" {o['colour']} {o['shape']} " in words
    return hits / total if total else float("nan")
