"""CTC beam search + LM: our torch decoder vs flashlight-text's, on the same saved emissions.

The checkpoint's acoustic model runs once over the validation and test splits; its log-posteriors are kept
and decoded by both backends (:class:`lstm_seq.audio.decoding.ctc_beam.CTCBeamSearch` and torchaudio's flashlight
``ctc_decoder``) with the same ARPA LM, lexicon, beam size, beam threshold, LM weight and word score (the
checkpoint's tuned values unless given). Prints WER/CER per split and backend, the number of utterances
whose transcripts differ, and speed in utterances per second, batched (the loader's batches) and one
utterance at a time, then writes ``benchmarks/results/<date>-<device>-asr-decoder.json``.

    python -m benchmarks.asr_decoder --ckpt outputs/…/checkpoints/final.ckpt
    python -m benchmarks.asr_decoder --ckpt PATH --device cuda        # the torch decoder on the GPU too
    python -m benchmarks.asr_decoder --ckpt PATH --beam-size 100 --lm-weight 1.5

flashlight-text is the optional extra (``pip install -e ".[flashlight]"``); without it only the torch rows
are printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks.lstm_speed import device_name, write_result
from lstm_seq.audio import recipe
from lstm_seq.audio.data.synth import SynthConfig, build_corpus
from lstm_seq.audio.decoding.decode import BeamConfig
from lstm_seq.audio.decoding.decoder import BeamSearchDecoder
from lstm_seq.audio.decoding.evaluate import Emissions, collect_emissions
from lstm_seq.audio.module import ASRModule
from lstm_seq.metrics.wer import char_errors, word_errors

ROOT = Path(__file__).resolve().parents[1]


def timed_decode(
    decoder: BeamSearchDecoder, em: Emissions, one_at_a_time: bool, device: str
) -> tuple[list[str], float]:
    """(transcripts in the order of ``em.refs``, seconds) for the whole split."""
    batches = [(lp.to(device), n) for lp, n in em.batches]
    if one_at_a_time:
        batches = [
            (lp[i : i + 1, : int(n[i])], n[i : i + 1]) for lp, n in batches for i in range(lp.shape[0])
        ]
    decoder(*batches[0])  # warm-up (allocations, the LM tables on the device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    hyps = [h for lp, n in batches for h in decoder(lp, n)]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return hyps, time.perf_counter() - t0


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, type=Path)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="where the default corpus is")
    parser.add_argument("--val-manifest", type=Path, help="default: the embedded corpus's validation split")
    parser.add_argument("--test-manifest", type=Path, help="default: the embedded corpus's test split")
    parser.add_argument("--beam-size", type=int, default=BeamConfig.beam_size)
    parser.add_argument("--lm-weight", type=float, help="default: the checkpoint's tuned value")
    parser.add_argument("--word-score", type=float, help="default: the checkpoint's tuned value")
    parser.add_argument("--device", default="cpu", help="where the torch decoder runs (cpu or cuda)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    module = ASRModule.load(args.ckpt)
    setup = module.decoding
    lm_weight = (
        args.lm_weight
        if args.lm_weight is not None
        else (setup.lm_weight if setup.lm_weight is not None else 1.0)
    )
    word_score = (
        args.word_score
        if args.word_score is not None
        else (setup.word_score if setup.word_score is not None else 0.0)
    )
    corpus = (
        build_corpus(args.data_dir, SynthConfig()) if not (args.val_manifest and args.test_manifest) else {}
    )
    manifests = {"val": args.val_manifest or corpus["val"], "test": args.test_manifest or corpus["test"]}
    data = {"max_duration": None, "max_frames": 6000, "num_workers": 0}
    dm = recipe.datamodule(module, manifests, data, seed=0)
    splits = {
        "val": collect_emissions(module, dm.val_dataloader()),
        "test": collect_emissions(module, dm.test_dataloader()),
    }
    backends = [("torch", "cpu")]
    if args.device != "cpu":
        backends.append(("torch", args.device))
    if importlib.util.find_spec("flashlight") is not None:
        backends.append(("flashlight", "cpu"))
    else:
        print("flashlight-text is not installed (pip install -e '.[flashlight]'): torch rows only")
    cases = []
    for backend, device in backends:
        cfg = BeamConfig(
            beam_size=args.beam_size, lm_weight=lm_weight, word_score=word_score, backend=backend
        )
        decoder = setup.decoder(module.vocab, cfg)  # build_decoder with the checkpoint's LM and lexicon
        for split, em in splits.items():
            hyps, secs = timed_decode(decoder, em, False, device)
            _, secs_one = timed_decode(decoder, em, True, device)
            cases.append({
                "backend": backend, "device": device, "split": split, "utterances": len(em.refs),
                "wer": word_errors(em.refs, hyps).rate, "cer": char_errors(em.refs, hyps).rate,
                "utt_per_s_batched": len(em.refs) / secs, "utt_per_s_one": len(em.refs) / secs_one,
                "batch_size": em.batches[0][0].shape[0], "_hyps": hyps,
            })  # fmt: skip
    reference = {c["split"]: c["_hyps"] for c in cases if c["backend"] == "flashlight"}
    print(
        f"\nbeam {args.beam_size}, LM weight {lm_weight:g}, word score {word_score:g}, threshold {BeamConfig.beam_threshold:g}"
    )
    print(
        f"{'backend':<11}{'device':<7}{'split':<6}{'utts':>6}{'WER %':>8}{'CER %':>8}{'differ':>8}{'utt/s batched':>15}{'utt/s one':>11}"
    )
    for c in cases:
        ref = reference.get(c["split"])
        c["differ_from_flashlight"] = (
            sum(a != b for a, b in zip(c["_hyps"], ref, strict=True)) if ref else None
        )
        differ = "" if c["differ_from_flashlight"] is None else str(c["differ_from_flashlight"])
        print(f"{c['backend']:<11}{c['device']:<7}{c['split']:<6}{c['utterances']:>6}{100 * c['wer']:>8.2f}{100 * c['cer']:>8.2f}"
              f"{differ:>8}{c['utt_per_s_batched']:>15.1f}{c['utt_per_s_one']:>11.1f}")  # fmt: skip
        del c["_hyps"]
    path = write_result(
        args.out_dir, device_name(torch.device(args.device)), "-asr-decoder", ckpt=str(args.ckpt),
        beam_size=args.beam_size, lm_weight=lm_weight, word_score=word_score, cases=cases,
    )  # fmt: skip
    return {"path": path, "cases": cases}


def main() -> None:
    run()


if __name__ == "__main__":
    main()
