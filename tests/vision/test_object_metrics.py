"""Object recall, exact set, count accuracy, repeat rate, colour accuracy and hallucination rate on hand-made
captions."""

from __future__ import annotations

import pytest

from lstm_seq.metrics.caption import colour_confusions, mentioned_objects, object_metrics, scene_confusion
from lstm_seq.vision.data.synth import COLOURS, SHAPES, SceneConfig, generate


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


def test_colour_accuracy_and_hallucination_rate_by_hand() -> None:
    hyps = [
        "a small red circle left of a big blue square",  # both right: 2 shapes, 2 colours, 0 invented
        "a big yellow star and a big blue square",  # the orange star bled to yellow: 2 shapes, 1 colour
        "a big blue square , a big red circle and a big green cross",  # the cross is not there
        "a white circle",  # one of two circles, right colour
        "a big purple diamond on a blobs background",  # a shape that is not there: no shape hit
    ]
    objects = [
        _objs("red circle", "blue square"),
        _objs("orange star", "blue square"),
        _objs("blue square", "red circle"),
        _objs("white circle", "white circle"),
        _objs("cyan triangle"),
    ]
    m = object_metrics(hyps, objects, COLOURS, SHAPES)
    # shapes named (multiset): 2 + 2 + 2 + 1 + 0 = 7; of those with the right colour: 2 + 1 + 2 + 1 = 6
    assert m["colour_accuracy"] == pytest.approx(6 / 7)
    # named phrases: 2 + 2 + 3 + 1 + 1 = 9; not in the image: yellow star, green cross, purple diamond
    assert m["hallucination_rate"] == pytest.approx(3 / 9)
    assert m["object_recall"] == pytest.approx(6 / 9)


def test_hallucination_rate_is_zero_without_named_objects_and_colour_accuracy_nan_without_shapes() -> None:
    m = object_metrics(["a picture"], [_objs("red circle")], COLOURS, SHAPES)
    assert m["hallucination_rate"] == 0.0 and m["colour_accuracy"] != m["colour_accuracy"]  # NaN


def test_scene_confusion_on_generated_scenes() -> None:
    """Captions hand-edited from the records of generated scenes: a colour swap, an invented object, a miss."""
    _, records = generate(SceneConfig(n_train=6, n_val=0, n_test=0, image_size=32))
    multi = next(r["objects"] for r in records if len(r["objects"]) >= 2)
    a, b = multi[0], multi[1]
    wrong = next(c for c in COLOURS if c != a["colour"])
    other = next(s for s in SHAPES if s not in {o["shape"] for o in multi})
    hyp = f"a {wrong} {a['shape']} and a {b['colour']} {b['shape']} and a {b['colour']} {other}"
    conf = scene_confusion(hyp, multi, COLOURS, SHAPES)
    assert conf["colour_swaps"] == [(a["colour"], wrong)]
    assert conf["invented"] == [(b["colour"], other)]
    assert sorted(conf["missed"]) == sorted((o["colour"], o["shape"]) for o in multi[2:])
    m = object_metrics([hyp], [multi], COLOURS, SHAPES)
    assert m["colour_accuracy"] == pytest.approx(1 / 2)  # two shapes named, one with its colour
    assert m["hallucination_rate"] == pytest.approx(2 / 3)  # three phrases, one in the image
    assert colour_confusions([hyp, hyp], [multi, multi], COLOURS, SHAPES) == {a["colour"]: {wrong: 2}}
