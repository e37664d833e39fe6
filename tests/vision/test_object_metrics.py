"""Object recall, exact set, count accuracy and repeat rate on hand-made captions."""

from __future__ import annotations

import pytest

from lstm_seq.metrics.caption import mentioned_objects, object_metrics
from lstm_seq.vision.data.synth import COLOURS, SHAPES


def _objs(*pairs: str) -> list[dict[str, str]]:
    return [{"colour": p.split()[0], "shape": p.split()[1], "size": "big"} for p in pairs]


def test_mentioned_objects_in_order_with_repeats() -> None:
    cap = "a big blue cross , a big blue square and a big blue square on a noise background"
    assert mentioned_objects(cap, COLOURS, SHAPES) == [
        ("blue", "cross"),
        ("blue", "square"),
        ("blue", "square"),
    ]
    assert mentioned_objects("a red shape left of a circle", COLOURS, SHAPES) == []


def test_object_metrics_on_hand_made_captions() -> None:
    hyps = [
        "a small red circle left of a big blue square",  # exact
        "a big blue cross a big blue square a big blue square and a big blue square",  # repeats, wrong count
        "a green star",  # one of two named
        "a white circle and a white circle",  # two white circles really there: no repeat
    ]
    objects = [
        _objs("red circle", "blue square"),
        _objs("blue cross", "blue square"),
        _objs("green star", "cyan diamond"),
        _objs("white circle", "white circle"),
    ]
    m = object_metrics(hyps, objects, COLOURS, SHAPES, prefix="test/")
    assert m["test/object_recall"] == pytest.approx((2 + 2 + 1 + 2) / 8)
    assert m["test/exact_set"] == pytest.approx(2 / 4)
    assert m["test/count_accuracy"] == pytest.approx(2 / 4)
    assert m["test/repeat_rate"] == pytest.approx(1 / 4)


def test_object_metrics_rejects_mismatched_inputs() -> None:
    with pytest.raises(ValueError):
        object_metrics(["a red circle"], [], COLOURS, SHAPES)
