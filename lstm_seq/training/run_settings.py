"""What a resumed run may change: every checkpoint records the settings its run trained with, and a resume
compares them with its own before the first step.

A resume continues the same run, so the settings that define the model and what it trains on (features, model
sizes, vocabulary, optimiser, data, seed, augmentation, …) must stay those of the checkpoint: a changed one is
refused, each named with its two values. The settings listed as changeable (``may_change``: e.g. more epochs,
another device, logging, decoding) are applied, and the new checkpoints record them, so a checkpoint always
holds what really ran. :class:`RunSettings` puts the settings into every checkpoint (``callbacks`` →
``RunSettings``); checkpoints written before it are compared on the module's ``hyper_parameters`` instead
(every one of them is fixed). A setting that was renamed (``RENAMED``: the caption optimiser's ``model.lr`` became
``optim.lr``) is compared under its new name, so the rule of the new key applies to a checkpoint written before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl

STATE_KEY = "RunSettings"
# old dotted key → its name now (a checkpoint's recorded settings are read with the new names)
RENAMED: dict[str, str] = {
    "model.lr": "optim.lr",  # the caption optimiser's settings moved to optim (conf/optim/)
    "model.weight_decay": "optim.weight_decay",
    "model.warmup_steps": "optim.warmup_steps",
}


class ResumeSettingsError(ValueError):
    """A resume changes settings that cannot change; the message names each one."""


class RunSettings(pl.Callback):
    """Saves ``settings`` (plain containers: the run's whole config) into every checkpoint; loading one
    restores nothing (the resumed run's own settings are the ones recorded from then on)."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = dict(settings)

    @property
    def state_key(self) -> str:
        return STATE_KEY

    def state_dict(self) -> dict[str, Any]:
        return {"settings": self.settings}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        pass


def flatten(node: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; lists, empty mappings and other values are leaves."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def differences(
    saved: Mapping[str, Any], now: Mapping[str, Any], renamed: Mapping[str, str] | None = None
) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (saved value, current value)}`` of every setting that differs (missing = None); the saved
    keys of ``renamed`` are compared under their new names."""
    a, b = _renamed(flatten(saved), renamed or {}), flatten(now)
    return {k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)}


def _renamed(flat: dict[str, Any], renamed: Mapping[str, str]) -> dict[str, Any]:
    return {renamed.get(k, k): v for k, v in flat.items() if k not in renamed or renamed[k] not in flat}


def _changeable(key: str, may_change: Sequence[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in may_change)


def saved_settings(checkpoint: Mapping[str, Any]) -> dict[str, Any] | None:
    """The settings a checkpoint's run recorded (None: written before :class:`RunSettings`)."""
    state = checkpoint.get("callbacks", {}).get(STATE_KEY)
    return dict(state["settings"]) if isinstance(state, Mapping) and "settings" in state else None


def check_resume(
    checkpoint: Mapping[str, Any],
    settings: Mapping[str, Any],
    hparams: Mapping[str, Any],
    may_change: Sequence[str],
    source: str = "the checkpoint",
    renamed: Mapping[str, str] = RENAMED,
) -> dict[str, tuple[Any, Any]]:
    """Compare a resumed run's ``settings`` (and its module's ``hparams``) with ``checkpoint``'s.

    Returns the changes that are applied: keys under ``may_change``, and keys that only one side has (a
    setting the code gained or lost since the checkpoint was written). The checkpoint's keys of ``renamed`` are
    compared under their new names.

    Raises:
        ResumeSettingsError: a setting outside ``may_change`` (or, for a checkpoint without recorded settings,
            a hyper-parameter) differs; the message names each with both values.
    """
    saved = saved_settings(checkpoint)
    if saved is not None:
        old, now, free = saved, settings, may_change
    else:  # an older checkpoint: its module's settings are all there is to compare, and all are fixed
        old, now, free = checkpoint.get("hyper_parameters") or {}, hparams, ()
    changed = differences(old, now, renamed)
    # a key on one side only is a setting the code gained or lost since the checkpoint: not a change
    both = _renamed(flatten(old), renamed).keys() & flatten(now).keys()
    refused = {k: v for k, v in changed.items() if k in both and not _changeable(k, free)}
    applied = {k: v for k, v in changed.items() if k not in refused}
    if refused:
        shown = list(refused.items())[:10]  # a checkpoint of another pipeline would list them all
        listed = "; ".join(f"{k}: {old!r} in {source}, {new!r} now" for k, (old, new) in shown)
        if len(refused) > len(shown):
            rest = list(refused)[len(shown) :]
            listed += f"; and {len(rest)} more: {', '.join(rest[:20])}" + (", …" if len(rest) > 20 else "")
        raise ResumeSettingsError(
            f"a resumed run continues the run of {source}, so these settings cannot change: {listed}. "
            "Keep them as they were, or start a new run (without ckpt=); what a resume may change: "
            f"{_summary(may_change)}"
        )
    return applied


def _summary(may_change: Sequence[str], shown: int = 8) -> str:
    more = len(may_change) - shown
    return ", ".join(may_change[:shown]) + (f" and {more} more" if more > 0 else "")
