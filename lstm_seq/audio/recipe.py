"""The speech recogniser's runs — prepare, train, test, transcribe — as functions of plain settings.

``python -m pipelines.asr`` reads its Hydra config and calls these; the settings arrive as plain dicts whose
keys are those of ``conf/data``, ``conf/decode`` and ``conf/transcribe``. Every output lands in the run folder
``out`` and is written atomically (:mod:`lstm_seq.outputs`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from lstm_seq.audio.data.augment import AugmentConfig
from lstm_seq.audio.data.datamodule import ASRDataModule
from lstm_seq.audio.data.importers import IMPORTERS
from lstm_seq.audio.data.manifest import read_manifest, write_manifest
from lstm_seq.audio.data.synth import SynthConfig, build_corpus
from lstm_seq.audio.decoding.decoder import BeamSearchDecoder
from lstm_seq.audio.decoding.evaluate import collect_emissions
from lstm_seq.audio.decoding.evaluate import evaluate as score_emissions
from lstm_seq.audio.decoding.setup import DecodingSetup
from lstm_seq.audio.decoding.setup import build as build_decoding
from lstm_seq.audio.decoding.tune import tune_beam
from lstm_seq.audio.module import ASRModule
from lstm_seq.audio.plots import plot_utterances
from lstm_seq.audio.recognizer import Recognizer
from lstm_seq.audio.transcribe import transcribe_to_jsonl
from lstm_seq.metrics.wer import word_errors
from lstm_seq.outputs import write_json_atomic, write_jsonl_atomic, write_metrics
from lstm_seq.training.checkpoint_io import load_checkpoint_file, save_atomic

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


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
        engines=tuple(data.get("engines", SynthConfig.engines)),
        pico_share=data.get("pico_share", SynthConfig.pico_share),
        pico_speakers=data.get("pico_speakers", SynthConfig.pico_speakers),
        short_fraction=data.get("short_fraction", SynthConfig.short_fraction),
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
    """``pipelines.asr.prepare``: write the manifests of a corpus already on disk (LibriSpeech, LJSpeech, Common
    Voice); returns and records ``{"prepare/<split>": utterances}``."""
    if name not in IMPORTERS:
        raise ValueError(f"no importer for data={name}; choose one of {', '.join(sorted(IMPORTERS))}")
    written = IMPORTERS[name](root, manifest_dir, **options)
    summary = {f"prepare/{k}": len(read_manifest(p)) for k, p in written.items()}
    write_metrics(out, summary)
    print("\n".join(f"wrote {p} ({summary[f'prepare/{k}']} utterances)" for k, p in written.items()))
    return summary


# ------------------------------------------------------------------------------------------------ decoding
def attach_decoding(
    module: ASRModule, decode: Mapping[str, Any], train_texts: Sequence[str]
) -> DecodingSetup:
    """Before training: build the run's :class:`DecodingSetup` (the ARPA of ``decode.lm_path``, else the
    training transcripts) and give it to ``module``, so that every checkpoint training writes holds it."""
    module.decoding = build_decoding(decode, train_texts, module.vocab)
    log.info("decoding: %s", module.decoding.describe())
    return module.decoding


def use_lm(module: ASRModule, decode: Mapping[str, Any]) -> None:
    """``pipelines.asr.test`` / ``pipelines.asr.transcribe`` with ``decode.lm_path``: that ARPA file replaces the checkpoint's LM
    and lexicon (:meth:`DecodingSetup.with_arpa`); without it the checkpoint's own are used."""
    if decode.get("lm_path"):
        module.decoding = module.decoding.with_arpa(decode["lm_path"], module.vocab)
        log.info("decoding: %s (decode.lm_path, in place of the checkpoint's)", module.decoding.describe())


def check_inputs(dm: ASRDataModule) -> dict[str, int]:
    """Before training: read every split's manifest (train, val and test), so that a missing, empty or
    malformed one, the test manifest included, fails now, naming its file (and line), not after training.
    Returns the usable utterances per split."""
    return {split: len(dm.dataset(split)) for split in dm.manifests}


def beam_decoder(
    module: ASRModule, decode: Mapping[str, Any], work_dir: Path | None = None
) -> BeamSearchDecoder | None:
    """The configured beam search over the module's own LM, lexicon and tuned weights
    (:meth:`DecodingSetup.decoder` → :func:`~lstm_seq.audio.decoding.decoder.build_decoder`); None: greedy.
    ``work_dir``: the flashlight backend's ``lexicon.txt`` / ``lm.arpa`` (the torch backend writes nothing)."""
    cfg = module.decoding.beam_config(decode)
    return module.decoding.decoder(module.vocab, cfg, work_dir) if cfg is not None else None


def tune_decoding(
    module: ASRModule, dm: ASRDataModule, decode: Mapping[str, Any], out: Path, device: str = "cpu"
) -> tuple[BeamSearchDecoder | None, dict[str, float]]:
    """After training, once: the run's beam-search decoder, with the null ones of ``lm_weight`` /
    ``word_score`` chosen on the validation set (grids ``tune_lm_weights`` / ``tune_word_scores``; a fixed
    value is a one-point grid). The chosen pair goes into ``module.decoding`` (so the final checkpoint holds
    it) and every pair's score into ``<out>/beam_tuning.json``. Returns the decoder the test uses (one LM and
    one lexicon trie per run; None: greedy) and the metrics to record ({} when nothing was tuned)."""
    decoder = beam_decoder(module, decode, out / "lm")
    grids = {
        k: [decode[k]] if decode.get(k) is not None else list(decode.get(f"tune_{k}s") or [])
        for k in ("lm_weight", "word_score")
    }
    if decoder is None or decoder.cfg.lm_order == 0 or not module.decoding.has_lm_source:
        return decoder, {}
    if all(decode.get(k) is not None for k in grids) or not all(grids.values()):
        return decoder, {}
    t0 = time.time()
    emissions = collect_emissions(module, dm.val_dataloader(), device)
    greedy = emissions.greedy(module.vocab)  # best-path decoding, for comparison
    greedy_wer = word_errors(emissions.refs, greedy).rate
    result = tune_beam(decoder, emissions, grids["lm_weight"], grids["word_score"])
    module.decoding = replace(module.decoding, lm_weight=result.lm_weight, word_score=result.word_score)
    chosen = {"lm_weight": result.lm_weight, "word_score": result.word_score}
    write_json_atomic(out / "beam_tuning.json", {"chosen": chosen, "table": result.table})
    log.info(
        "beam tuned on %d validation utterances in %.1f s: lm_weight %.2f, word_score %.2f → val WER %.2f%%"
        " (greedy %.2f%%)",
        len(emissions.refs),
        time.time() - t0,
        result.lm_weight,
        result.word_score,
        100 * result.wer,
        100 * greedy_wer,
    )
    metrics = {
        "decode/lm_weight": result.lm_weight,
        "decode/word_score": result.word_score,
        "val/wer_beam_tuned": result.wer,
        "val/cer_beam_tuned": result.cer,
        "val/wer_greedy_final": greedy_wer,
    }
    return decoder.with_weights(result.lm_weight, result.word_score), metrics


def save_final(module: ASRModule, best: str | Path, path: Path) -> Path:
    """The run's final checkpoint at ``path``: the checkpoint ``best`` as training wrote it (weights, settings,
    loader position) with ``module``'s decoding entry — LM source, lexicon and the weights tuned after
    training — put in by the hook that fills every checkpoint (:meth:`ASRModule.on_save_checkpoint`).
    Self-contained: ``pipelines.asr.test``, ``pipelines.asr.transcribe`` and ``Recognizer`` need nothing else."""
    ckpt = load_checkpoint_file(best, "cpu", require_state_dict=False)
    module.on_save_checkpoint(ckpt)
    save_atomic(ckpt, path)
    return path


# ------------------------------------------------------------------------------------------------ runs
def evaluate(
    module: ASRModule,
    dm: ASRDataModule,
    decoder: BeamSearchDecoder | None,
    out: Path,
    device: str = "cpu",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``pipelines.asr.test`` (and the end of training): WER/CER on the test split with greedy and, given ``decoder``
    (:func:`beam_decoder`, or the tuned one of :func:`tune_decoding`), beam + LM decoding; writes metrics.json
    and predictions.jsonl. Returns the metrics and the predictions (one row per utterance)."""
    if decoder is not None:
        log.info(
            "beam search: lm_weight %.2f, word_score %.2f", decoder.cfg.lm_weight, decoder.cfg.word_score
        )
    emissions = collect_emissions(module, dm.test_dataloader(), device)
    results, predictions = score_emissions(emissions, module.vocab, decoder)
    if decoder is not None:
        results.update(
            {"decode/lm_weight": decoder.cfg.lm_weight, "decode/word_score": decoder.cfg.word_score}
        )
    write_metrics(out, results)
    write_jsonl_atomic(out / "predictions.jsonl", predictions)
    return results, predictions


def finish_training(
    module: ASRModule,
    dm: ASRDataModule,
    decode: Mapping[str, Any],
    out: Path,
    report: Mapping[str, Any],
    best: str | Path | None = None,
    final: Path | None = None,
    plots: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """After fitting, in this order: tune the decoder on validation (:func:`tune_decoding`), write the final
    checkpoint ``final`` (``best``'s weights with the tuned decoding: :func:`save_final`; not written when
    either is None), test with the tuned decoder, record the data and training counters in metrics.json and
    draw ``plots`` test utterances (MFCCs, CTC posteriors, decoded vs reference text). ``module``: the
    model of ``best``."""
    decoder, results = tune_decoding(module, dm, decode, out, device)
    if best and final is not None:
        save_final(module, best, final)
    tested, predictions = evaluate(module, dm, decoder, out, device)
    results.update(tested)
    results.update(report)
    for split in dm.manifests:  # every split, also one that no loader of this process needed (a resume)
        results.update({f"data/{split}/{k}": v for k, v in dm.dataset(split).summary().items()})
    write_metrics(out, results)
    if plots:
        items = [{"path": r["path"], "ref": r["ref"]} for r in predictions[:plots]]
        plot_utterances(module, items, out / "plots")
    return results


def transcribe(
    module: ASRModule,
    decode: Mapping[str, Any],
    audio_dir: Path,
    out: Path,
    chunk_s: float,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
) -> dict[str, int]:
    """``pipelines.asr.transcribe``: every audio file under ``audio_dir`` → ``<out>/transcripts.jsonl`` through a
    :class:`~lstm_seq.audio.recognizer.Recognizer` (a file that cannot be read gets an ``error`` row; the run
    goes on)."""
    recognizer = Recognizer(module, decode=decode, device=device, chunk_s=chunk_s)
    counts = transcribe_to_jsonl(recognizer, audio_dir, out / "transcripts.jsonl", batch_size)
    write_metrics(out, {f"transcribe/{k}": v for k, v in counts.items()})
    print(
        f"transcribed {counts['transcribed']}/{counts['files']} files ({counts['errors']} errors)"
        f" → {out / 'transcripts.jsonl'}"
    )
    return counts


def export(module: ASRModule, out: Path) -> dict[str, int]:
    """``pipelines.asr.export``: ONNX files of the model with their ``metadata.json`` into ``<out>/export``
    (:func:`lstm_seq.audio.export.export_acoustic_model`); records ``export/files`` in metrics.json."""
    from lstm_seq.audio.export import export_acoustic_model  # the exporter's imports only when exporting

    return export_acoustic_model(module, out / "export").record(out)


def describe(results: Mapping[str, Any]) -> str:
    """One line for the console: WER/CER (and greedy WER when beam search ran)."""
    line = f"WER {results['test/wer']:.2%}, CER {results['test/cer']:.2%}"
    if "test/wer_beam" in results:
        line += f" (greedy WER {results['test/wer_greedy']:.2%})"
    return line
