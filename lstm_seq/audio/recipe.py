"""The speech recogniser's runs — prepare, train, test, transcribe — as functions of plain settings.

``python -m pipelines.asr`` reads its Hydra config and calls these; the settings arrive as plain dicts whose
keys are those of ``conf/data``, ``conf/decode`` and ``conf/transcribe``. Every output lands in the run folder
``out`` and is written atomically (:mod:`lstm_seq.outputs`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from lstm_seq.audio.data.augment import AugmentConfig
from lstm_seq.audio.data.datamodule import ASRDataModule
from lstm_seq.audio.data.importers import IMPORTERS
from lstm_seq.audio.data.manifest import read_manifest, write_manifest
from lstm_seq.audio.data.synth import SynthConfig, build_corpus
from lstm_seq.audio.decoding.decode import BeamConfig, BeamSearchDecoder
from lstm_seq.audio.decoding.tune import collect_emissions, tune_beam
from lstm_seq.audio.module import ASRModule, store_decode_settings
from lstm_seq.audio.plots import plot_utterances
from lstm_seq.audio.transcribe import Transcriber, transcribe_to_jsonl
from lstm_seq.outputs import write_json_atomic, write_jsonl_atomic, write_metrics

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
UNTUNED = {"lm_weight": 1.0, "word_score": 0.0}  # what a null weight means when nothing was tuned


# ------------------------------------------------------------------------------------------------ data
def synthetic_manifests(data: Mapping[str, Any], data_dir: Path, workers: int = 0) -> dict[str, Path]:
    """Build (or reuse) the embedded eSpeak NG corpus of ``conf/data/speech_synth.yaml`` under ``data_dir``."""
    smoke = bool(data.get("smoke"))
    synth = SynthConfig(
        n_utterances=data["smoke_utterances"] if smoke else data["n_utterances"],
        voices=data.get("voices", "stock"),
        n_speakers=data.get("n_speakers", 400),
        rate_wpm=tuple(data.get("rate_wpm", (140, 210))),
        val_speakers=min(data["val_speakers"], 3) if smoke else data["val_speakers"],
        test_speakers=min(data["test_speakers"], 4) if smoke else data["test_speakers"],
        val_fraction=data["val_fraction"],
        test_fraction=data["test_fraction"],
        sample_rate=data["sample_rate"],
        snr_db=tuple(data["snr_db"]),
        seed=data["seed"],
    )
    t0 = time.time()
    paths = build_corpus(data_dir, synth, workers=workers)
    log.info("synthetic corpus ready in %.1f s: %s", time.time() - t0, paths["train"].parent)
    return paths


def smoke_manifests(manifests: Mapping[str, Path], out: Path, n: int) -> dict[str, Path]:
    """The first ``n`` utterances of each manifest, written under ``<out>/smoke`` (``debug=smoke`` on real data)."""
    return {
        s: write_manifest(out / "smoke" / f"{s}.jsonl", read_manifest(p)[:n]) for s, p in manifests.items()
    }


def datamodule(
    module: ASRModule,
    manifests: Mapping[str, Path],
    data: Mapping[str, Any],
    seed: int,
    augment: Mapping[str, Any] | None = None,
) -> ASRDataModule:
    """Loaders for ``manifests`` at the module's own sample rate and frame rate (from its checkpoint when
    testing, so the data can never drift from what the model was trained on). ``augment``: the
    :class:`~lstm_seq.audio.data.augment.AugmentConfig` fields of the training split's waveform augmentation
    (``conf/augment``; None = none)."""
    sr = module.feature_cfg.sample_rate
    return ASRDataModule(
        dict(manifests),
        module.vocab,
        sample_rate=sr,
        max_duration=data["max_duration"],
        max_frames=data["max_frames"],
        frames_per_second=sr / module.feature_cfg.hop_length,
        num_workers=data["num_workers"],
        seed=seed,
        augment=AugmentConfig.from_dict(dict(augment)) if augment is not None else None,
    )


def prepare(name: str, root: Path, manifest_dir: Path, out: Path, **options: Any) -> dict[str, int]:
    """``mode=prepare``: write the manifests of a corpus already on disk (LibriSpeech, LJSpeech, Common
    Voice); returns and records ``{"prepare/<split>": utterances}``."""
    if name not in IMPORTERS:
        raise ValueError(f"no importer for data={name}; choose one of {', '.join(sorted(IMPORTERS))}")
    written = IMPORTERS[name](root, manifest_dir, **options)
    summary = {f"prepare/{k}": len(read_manifest(p)) for k, p in written.items()}
    write_metrics(out, summary)
    print("\n".join(f"wrote {p} ({summary[f'prepare/{k}']} utterances)" for k, p in written.items()))
    return summary


# ------------------------------------------------------------------------------------------------ decoding
def beam_config(decode: Mapping[str, Any], tuned: Mapping[str, float] | None = None) -> BeamConfig | None:
    """The :class:`BeamConfig` of ``conf/decode`` settings, or None for greedy decoding. A null ``lm_weight``
    or ``word_score`` takes the value tuned on the validation set (``tuned``, stored in the checkpoint),
    else 1.0 / 0.0."""
    if not decode.get("beam"):
        return None
    fields = set(BeamConfig.__dataclass_fields__)
    kwargs = {k: v for k, v in decode.items() if k in fields and v is not None}
    for key, default in UNTUNED.items():
        if decode.get(key) is None:
            kwargs[key] = (tuned or {}).get(key, default)
    return BeamConfig(**kwargs)


def attach_decoding(module: ASRModule, decode: Mapping[str, Any], work_dir: Path) -> BeamConfig | None:
    """Give ``module`` the configured beam search (its LM files go to ``work_dir``); None: greedy only."""
    cfg = beam_config(decode, module.decode_settings)
    current = module.beam_decoder
    if cfg is not None and isinstance(current, BeamSearchDecoder) and current.cfg == cfg:
        return cfg  # already built with these settings (by tune_decoding): no second LM estimate
    if cfg is not None and module.attach_beam_search(cfg, work_dir):
        log.info("beam search: lm_weight %.2f, word_score %.2f", cfg.lm_weight, cfg.word_score)
        return cfg
    return None


def tune_decoding(
    module: ASRModule,
    dm: ASRDataModule,
    decode: Mapping[str, Any],
    out: Path,
    checkpoints: Sequence[str | Path] = (),
    device: str = "cpu",
) -> dict[str, float]:
    """Choose the null ones of ``lm_weight`` / ``word_score`` on the validation set (grids
    ``tune_lm_weights`` / ``tune_word_scores``), keep them in ``module.decode_settings`` and in each of
    ``checkpoints`` (so ``mode=test`` and ``mode=transcribe`` use them), and write every pair's score to
    ``<out>/beam_tuning.json``. Returns the metrics to record; {} when nothing is tuned."""
    base = beam_config(decode)
    if base is None or base.lm_order == 0 or not module.lm_texts:
        return {}
    # a fixed value is a one-point grid; a null one is searched over tune_lm_weights / tune_word_scores
    grids = {
        k: [decode[k]] if decode.get(k) is not None else list(decode.get(f"tune_{k}s") or []) for k in UNTUNED
    }
    if all(decode.get(k) is not None for k in UNTUNED) or not all(grids.values()):
        return {}
    t0 = time.time()
    decoder = BeamSearchDecoder(module.vocab, base, module.lm_texts, out / "lm")
    emissions = collect_emissions(module, dm.val_dataloader(), device)
    result = tune_beam(decoder, emissions, module.vocab, grids["lm_weight"], grids["word_score"])
    module.decode_settings = {"lm_weight": result.lm_weight, "word_score": result.word_score}
    module.beam_decoder = decoder.with_weights(result.lm_weight, result.word_score)  # what the test uses
    for path in checkpoints:
        store_decode_settings(path, module.decode_settings)
    write_json_atomic(out / "beam_tuning.json", {"chosen": module.decode_settings, "table": result.table})
    log.info(
        "beam tuned on %d validation utterances in %.1f s: lm_weight %.2f, word_score %.2f → val WER %.2f%%"
        " (greedy %.2f%%)",
        len(emissions.refs),
        time.time() - t0,
        result.lm_weight,
        result.word_score,
        100 * result.wer,
        100 * result.greedy_wer,
    )
    return {
        "decode/lm_weight": result.lm_weight,
        "decode/word_score": result.word_score,
        "val/wer_beam_tuned": result.wer,
        "val/cer_beam_tuned": result.cer,
        "val/wer_greedy_final": result.greedy_wer,
    }


# ------------------------------------------------------------------------------------------------ runs
def evaluate(
    module: ASRModule, dm: ASRDataModule, decode: Mapping[str, Any], out: Path, trainer: Any
) -> dict[str, Any]:
    """``mode=test`` (and the end of training): WER/CER on the test split with greedy and, when configured,
    beam + LM decoding; writes metrics.json and predictions.jsonl (one row per utterance)."""
    beam = attach_decoding(module, decode, out / "lm")
    results = {k: float(v) for k, v in trainer.test(module, datamodule=dm, verbose=False)[0].items()}
    results["test/utterances"] = len(module.test_predictions)
    if beam is not None:
        results.update({"decode/lm_weight": beam.lm_weight, "decode/word_score": beam.word_score})
    write_metrics(out, results)
    write_jsonl_atomic(out / "predictions.jsonl", module.test_predictions)
    return results


def finish_training(
    module: ASRModule,
    dm: ASRDataModule,
    decode: Mapping[str, Any],
    out: Path,
    trainer: Any,
    report: Mapping[str, Any],
    checkpoints: Sequence[str | Path] = (),
    plots: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """After fitting: tune the decoder on validation, test, record the data and training counters in
    metrics.json and draw ``plots`` test utterances (MFCCs, CTC posteriors, decoded vs reference text)."""
    results = tune_decoding(module, dm, decode, out, checkpoints, device)
    results.update(evaluate(module, dm, decode, out, trainer))
    results.update(report)
    for split in dm.manifests:  # every split, also one that no loader of this process needed (a resume)
        results.update({f"data/{split}/{k}": v for k, v in dm.dataset(split).summary().items()})
    write_metrics(out, results)
    if plots:
        items = [{"path": r["path"], "ref": r["ref"]} for r in module.test_predictions[:plots]]
        plot_utterances(module, items, out / "plots")
    return results


def transcribe(
    module: ASRModule,
    decode: Mapping[str, Any],
    audio_dir: Path,
    out: Path,
    chunk_s: float,
    device: str | torch.device = "cpu",
) -> dict[str, int]:
    """``mode=transcribe``: every audio file under ``audio_dir`` → ``<out>/transcripts.jsonl`` (a file that
    cannot be read gets an ``error`` row; the run goes on)."""
    attach_decoding(module, decode, out / "lm")
    transcriber = Transcriber(module, chunk_s=chunk_s, device=device)
    counts = transcribe_to_jsonl(transcriber, audio_dir, out / "transcripts.jsonl")
    write_metrics(out, {f"transcribe/{k}": v for k, v in counts.items()})
    print(
        f"transcribed {counts['transcribed']}/{counts['files']} files ({counts['errors']} errors)"
        f" → {out / 'transcripts.jsonl'}"
    )
    return counts


def describe(results: Mapping[str, Any]) -> str:
    """One line for the console: WER/CER (and greedy WER when beam search ran)."""
    line = f"WER {results['test/wer']:.2%}, CER {results['test/cer']:.2%}"
    if "test/wer_beam" in results:
        line += f" (greedy WER {results['test/wer_greedy']:.2%})"
    return line
