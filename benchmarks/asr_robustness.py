"""ASR robustness: WER/CER on the eSpeak NG test split (in-domain) vs synthesisers training never uses.

The synthetic held-out sets are *new* sentences of the project's grammar (:mod:`lstm_seq.audio.data.grammar`; every sentence
that occurs in the checkpoint's training transcripts is rejected), spoken by other engines:

* ``flite`` (Debian: ``apt-get install flite``): voices kal16, awb, rms, slt;
* ``festival`` (``apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts``): voices
  kal_diphone, ked_diphone, cmu_us_slt_arctic_hts (an HTS voice trained on a real speaker);
* ``asterisk``: **real speech**, the studio prompts of one human speaker (Allison Smith, Asterisk PBX core
  sounds, CC-BY-SA-3.0; ``apt-get install asterisk-core-sounds-en-wav``), 8 kHz telephone band. Set ``words``: the
  48 prompts that are grammar words, each alone (numbers, ordinals, "hundred", "today", "minutes", …); set
  ``phrases``: 40 short commands of 2–3 words ("five minutes", "at nine o'clock", …) made by joining prompts with
  a short pause. Evaluation only: the words occur in training transcripts, the speaker never does.

Each utterance is resampled to the model's rate, peak-normalised to a random level, padded with a little
silence and gets mild white noise (20–35 dB SNR), every draw seeded by (seed, voice, index). A missing engine
or voice is skipped with a message that says how to install it. The audio is cached under
``<data-dir>/asr_robustness/<engine>-<voice>-<key>/`` (a ``DONE`` file marks a complete set), so reruns only
decode.

Decoding is the checkpoint's own: :meth:`lstm_seq.audio.module.ASRModule.load`, then the beam search + LM with
the LM weight / word score tuned on validation and stored in the checkpoint
(:func:`lstm_seq.audio.recipe.beam_decoder`); greedy WER is reported next to it. Prints a table and writes
``benchmarks/results/<date>-<device>-asr-robustness[-TAG].json``.

    python -m benchmarks.asr_robustness --ckpt outputs/…/checkpoints/final.ckpt
    python -m benchmarks.asr_robustness --ckpt PATH --per-voice 10 --engines flite     # quick look
    python -m benchmarks.asr_robustness --ckpt PATH --test-manifest data/…/test.jsonl  # another in-domain set
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import shutil
import subprocess
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from benchmarks.lstm_speed import device_name, write_result
from lstm_seq.audio import recipe
from lstm_seq.audio.data.grammar import NUMBERS, ORDINALS, sample_sentence
from lstm_seq.audio.data.io import load_audio
from lstm_seq.audio.data.manifest import Utterance, write_manifest
from lstm_seq.audio.data.synth import SynthConfig, build_corpus
from lstm_seq.audio.decoding.decode import BeamConfig
from lstm_seq.audio.decoding.evaluate import Decoder, collect_emissions
from lstm_seq.audio.module import ASRModule
from lstm_seq.metrics.wer import char_errors, word_errors

_VERSION = 1  # bump when the held-out audio changes, so old caches are not reused
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Engine:
    """A test-only source of speech: its voices (or sets), how to install it and how to render a list of texts."""

    name: str
    voices: tuple[str, ...]
    install: str  # the message for a missing engine or voice
    available: Callable[[], set[str]]  # the voices installed here (empty: engine missing)
    render: Callable[[str, Sequence[str], Path], list[Path]]  # (voice, texts, folder) -> wav files
    texts: Callable[[str, int], list[str]] | None = None  # (voice, seed) -> its own fixed texts (recordings)
    real: bool = False  # human recordings, reported apart from the synthetic engines


def _flite_voices() -> set[str]:
    if shutil.which("flite") is None:
        return set()
    out = subprocess.run(["flite", "-lv"], capture_output=True, text=True, check=False).stdout
    return set(out.split(":", 1)[-1].split())


def _flite_render(voice: str, texts: Sequence[str], folder: Path) -> list[Path]:
    paths = [folder / f"raw{i:04d}.wav" for i in range(len(texts))]

    def one(k: int) -> None:
        cmd = ["flite", "-voice", voice, "-t", texts[k], "-o", str(paths[k])]
        subprocess.run(cmd, check=True, capture_output=True)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, range(len(texts))))
    return paths


def _festival_voices() -> set[str]:
    if shutil.which("festival") is None:
        return set()
    out = subprocess.run(
        ["festival", "-b", "(print (voice.list))"], capture_output=True, text=True, check=False
    ).stdout
    return set(out.replace("(", " ").replace(")", " ").split())


def _festival_render(voice: str, texts: Sequence[str], folder: Path) -> list[Path]:
    """One festival process per voice: a Scheme script that synthesises and saves every sentence."""
    paths = [folder / f"raw{i:04d}.wav" for i in range(len(texts))]
    lines = [f"(voice_{voice})"]
    for text, path in zip(texts, paths, strict=True):
        lines.append(f'(utt.save.wave (SynthText "{text}") "{path}" (quote riff))')
    script = folder / "synth.scm"
    script.write_text("\n".join(lines) + "\n")
    subprocess.run(["festival", "-b", str(script)], check=True, capture_output=True)
    return paths


_ASTERISK_ROOTS = ("/usr/share/asterisk/sounds/en_US_f_Allison", "/usr/share/asterisk/sounds/en")
_NUMBER_FILES = {
    **{w: f"digits/{n}" for n, w in enumerate(NUMBERS[:21])},  # zero … twenty
    **{w: f"digits/{10 * k}" for k, w in enumerate(NUMBERS[21:28], start=3)},  # thirty … ninety
    "hundred": "digits/hundred",
}
ASTERISK_WORDS: dict[str, str] = {  # grammar word -> prompt file (without .wav)
    **_NUMBER_FILES,
    **{w: f"digits/h-{k}" for k, w in enumerate(ORDINALS, start=1)},  # first … tenth
    "today": "digits/today",
    "tomorrow": "digits/tomorrow",
    "o'clock": "digits/oclock",
    "at": "digits/at",
    "for": "for",
    "is": "is",
    "hours": "hours",
    "minutes": "minutes",
    "seconds": "seconds",
}


def _asterisk_root() -> Path | None:
    return next((Path(r) for r in _ASTERISK_ROOTS if (Path(r) / "digits" / "1.wav").exists()), None)


def _asterisk_sets() -> set[str]:
    return {"words", "phrases"} if _asterisk_root() is not None else set()


def _asterisk_texts(voice: str, seed: int) -> list[str]:
    """``words``: every mapped grammar word alone; ``phrases``: 40 distinct 2–3 word commands (seeded)."""
    if voice == "words":
        return sorted(ASTERISK_WORDS)
    rng = random.Random(f"asterisk-{seed}")
    nums = list(_NUMBER_FILES)
    small = list(NUMBERS[1:13])  # one … twelve, for clock times
    forms = [
        lambda: f"{rng.choice(nums)} {rng.choice(['hours', 'minutes', 'seconds'])}",
        lambda: f"{rng.choice(small)} o'clock",
        lambda: f"at {rng.choice(small)} o'clock",
        lambda: f"{rng.choice(['today', 'tomorrow'])} at {rng.choice(small)}",
        lambda: f"{rng.choice(nums)} {rng.choice(nums)}",
        lambda: f"{rng.choice(nums)} {rng.choice(nums)} {rng.choice(nums)}",
    ]
    out: list[str] = []
    while len(out) < 40:
        text = rng.choice(forms)()
        if text not in out:
            out.append(text)
    return out


def _asterisk_render(voice: str, texts: Sequence[str], folder: Path) -> list[Path]:
    """Each text's words as the speaker's prompts, joined with 120 ms of silence, at the prompts' 8 kHz."""
    root = _asterisk_root()
    assert root is not None
    paths = []
    for i, text in enumerate(texts):
        parts = []
        for w in text.split():
            wav, sr = sf.read(root / f"{ASTERISK_WORDS[w]}.wav", dtype="float32")
            parts += [wav, np.zeros(int(0.12 * sr), np.float32)]
        paths.append(folder / f"raw{i:04d}.wav")
        sf.write(paths[-1], np.concatenate(parts[:-1]), sr, subtype="PCM_16")
    return paths


ENGINES: dict[str, Engine] = {
    "flite": Engine(
        "flite", ("kal16", "awb", "rms", "slt"), "apt-get install flite", _flite_voices, _flite_render
    ),
    "festival": Engine(
        "festival",
        ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"),
        "apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts",
        _festival_voices,
        _festival_render,
    ),
    "asterisk": Engine(
        "asterisk",
        ("words", "phrases"),
        "apt-get install asterisk-core-sounds-en-wav",
        _asterisk_sets,
        _asterisk_render,
        texts=_asterisk_texts,
        real=True,
    ),
}


@dataclass(frozen=True)
class HeldOutConfig:
    """What a held-out set contains; every field is part of its cache key."""

    per_voice: int = 30  # sentences per voice
    seed: int = 0
    sample_rate: int = 16000
    snr_db: tuple[float, float] = (20.0, 35.0)  # mild white noise, per utterance
    peak: tuple[float, float] = (0.3, 0.9)  # peak level after normalisation
    pad_s: tuple[float, float] = (0.05, 0.25)  # silence added on each side


def heldout_sentences(n: int, exclude: set[str], seed: int = 0) -> list[str]:
    """``n`` distinct grammar sentences, none of them in ``exclude`` (the training transcripts)."""
    rng = random.Random(f"heldout-{seed}")
    out: list[str] = []
    seen = set(exclude)
    for _ in range(1000 * n + 1000):
        if len(out) == n:
            return out
        s = sample_sentence(rng)
        if s not in seen:
            seen.add(s)
            out.append(s)
    raise RuntimeError(f"could not draw {n} new sentences: the grammar is exhausted by the exclusions")


def _finish(raw: Path, index: int, voice_id: int, cfg: HeldOutConfig, path: Path) -> float:
    """Resample, normalise, pad and add noise to one raw engine output; returns its duration (s)."""
    rng = np.random.default_rng([cfg.seed, voice_id, index])
    wav = load_audio(raw, cfg.sample_rate)
    peak = float(np.max(np.abs(wav))) if wav.size else 0.0
    if peak > 0:
        wav = wav * (rng.uniform(*cfg.peak) / peak)
    pad = [int(rng.uniform(*cfg.pad_s) * cfg.sample_rate) for _ in range(2)]
    wav = np.concatenate([np.zeros(pad[0], np.float32), wav, np.zeros(pad[1], np.float32)])
    rms = float(np.sqrt(np.mean(wav**2))) if wav.size else 0.0
    snr = rng.uniform(*cfg.snr_db)
    wav = wav + rng.standard_normal(wav.shape[0]) * (rms / 10 ** (snr / 20) if rms > 0 else 1e-4)
    sf.write(path, np.clip(wav, -1, 1).astype(np.float32), cfg.sample_rate, subtype="PCM_16", format="WAV")
    return wav.shape[0] / cfg.sample_rate


def _heldout_dir(
    engine: Engine, voice: str, texts: Sequence[str], cfg: HeldOutConfig, data_dir: Path
) -> Path:
    blob = json.dumps({"v": _VERSION, "cfg": asdict(cfg), "texts": list(texts)}, sort_keys=True)
    key = hashlib.sha1(blob.encode()).hexdigest()[:10]
    return Path(data_dir).resolve() / "asr_robustness" / f"{engine.name}-{voice}-{key}"


def cached_heldout(
    engine: Engine, voice: str, texts: Sequence[str], cfg: HeldOutConfig, data_dir: Path
) -> bool:
    """Whether that set is already rendered under ``data_dir`` (then it is scored even where the engine is missing,
    e.g. on a machine the audio was copied to)."""
    return (_heldout_dir(engine, voice, texts, cfg, data_dir) / "DONE").exists()


def build_heldout(
    engine: Engine, voice: str, texts: Sequence[str], cfg: HeldOutConfig, data_dir: Path
) -> Path:
    """The manifest of ``texts`` spoken by ``engine``/``voice`` (rendered once, then reused)."""
    out = _heldout_dir(engine, voice, texts, cfg, data_dir)
    manifest = out / "manifest.jsonl"
    if (out / "DONE").exists() and manifest.exists():
        return manifest
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    raws = engine.render(voice, texts, tmp)
    voice_id = zlib.crc32(f"{engine.name}/{voice}".encode())
    rows = []
    for i, (raw, text) in enumerate(zip(raws, texts, strict=True)):
        wav = tmp / f"{i:04d}.wav"
        rows.append(Utterance(str(wav), round(_finish(raw, i, voice_id, cfg, wav), 4), text))
        raw.unlink()
    write_manifest(tmp / "manifest.jsonl", rows, relative=True)
    (tmp / "DONE").write_text("ok\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return manifest


def score(module: ASRModule, beam: Decoder | None, manifest: Path, name: str) -> dict[str, Any]:
    """WER/CER of ``module`` (with ``beam``, its beam + LM decoder, and greedy) on the utterances of ``manifest``."""
    data = {"max_duration": None, "max_frames": 6000, "num_workers": 0}
    dm = recipe.datamodule(module, {"test": manifest}, data, seed=0)
    emissions = collect_emissions(module, dm.test_dataloader())
    refs = emissions.refs
    hyps = emissions.decode(beam) if beam is not None else emissions.greedy(module.vocab)
    greedy = emissions.greedy(module.vocab)
    return {
        **_rates(name, refs, hyps, greedy),
        "examples": [{"ref": r, "hyp": h} for r, h in list(zip(refs, hyps, strict=True))[:3]],
        "_pairs": list(zip(refs, hyps, greedy, strict=True)),
    }


def _rates(name: str, refs: list[str], hyps: list[str], greedy: list[str]) -> dict[str, Any]:
    """Corpus-level WER/CER (beam) and greedy WER of one row."""
    return {
        "name": name,
        "utterances": len(refs),
        "wer": round(word_errors(refs, hyps).rate, 4),
        "cer": round(char_errors(refs, hyps).rate, 4),
        "wer_greedy": round(word_errors(refs, greedy).rate, 4),
    }


def _pooled(name: str, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One row over several sets (corpus-level rates, not an average of rates)."""
    pairs = [p for r in rows for p in r["_pairs"]]
    refs, hyps, greedy = ([p[k] for p in pairs] for k in range(3))
    return {**_rates(name, refs, hyps, greedy), "voices": [r["name"] for r in rows], "_pairs": pairs}


def default_test_manifest(data_dir: Path) -> Path:
    """The eSpeak NG test split of the default corpus (built if missing)."""
    return build_corpus(data_dir, SynthConfig())["test"]


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse ``argv``, build/reuse the held-out sets, score the checkpoint; returns the result dict."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", type=Path, required=True, help="an asr checkpoint")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--per-voice", type=int, default=HeldOutConfig.per_voice, help="sentences per voice")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--data-dir", type=Path, default=ROOT / "data", help="corpus and held-out audio cache"
    )
    parser.add_argument(
        "--test-manifest",
        type=Path,
        nargs="+",
        default=None,
        help="in-domain sets (default: the default corpus' test); also test-<engine>.jsonl beside it if present",
    )
    parser.add_argument("--no-in-domain", action="store_true", help="skip the eSpeak NG test split")
    parser.add_argument("--tag", default="", help="suffix of the result file name")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    t0 = time.time()

    module = ASRModule.load(args.ckpt)
    cfg = HeldOutConfig(per_voice=args.per_voice, seed=args.seed, sample_rate=module.feature_cfg.sample_rate)
    decode = {**BeamConfig().to_dict(), "beam": True, "lm_weight": None, "word_score": None}
    work = Path(tempfile.mkdtemp(prefix="asr_robustness_"))
    beam = recipe.beam_decoder(module, decode, work / "lm")
    how = (
        f"beam + LM (lm_weight {beam.cfg.lm_weight:g}, word_score {beam.cfg.word_score:g})"
        if beam
        else "greedy"
    )

    rows: list[dict[str, Any]] = []
    if not args.no_in_domain:
        manifests = args.test_manifest or [default_test_manifest(args.data_dir)]
        for k, manifest in enumerate(manifests):
            rows.append(
                score(module, beam, manifest, "espeak-ng test (in-domain)" if k == 0 else manifest.stem)
            )
            for part in sorted(manifest.parent.glob(f"{manifest.stem}-*.jsonl")):  # per engine
                rows.append(score(module, beam, part, f"  {part.stem}"))
    texts = heldout_sentences(args.per_voice, set(module.decoding.sentences), args.seed)
    skipped: list[str] = []
    held: list[dict[str, Any]] = []
    for name in args.engines:
        engine = ENGINES[name]
        have = engine.available()
        voice_texts = {v: engine.texts(v, args.seed) if engine.texts else texts for v in engine.voices}
        cached = {v for v, t in voice_texts.items() if cached_heldout(engine, v, t, cfg, args.data_dir)}
        if not have and not cached:
            msg = f"skipping {name}: not installed (Debian/Ubuntu: {engine.install})"
            print(msg)
            skipped.append(msg)
            continue
        voice_rows = []
        for voice in engine.voices:
            if voice not in have and voice not in cached:
                msg = f"skipping {name} voice {voice}: not installed ({engine.install})"
                print(msg)
                skipped.append(msg)
                continue
            own = voice_texts[voice]
            manifest = build_heldout(engine, voice, own, cfg, args.data_dir)
            voice_rows.append(score(module, beam, manifest, f"{name}/{voice}"))
            voice_rows[-1]["real"] = engine.real
        if voice_rows:
            held.append({**_pooled(name, voice_rows), "real": engine.real})
            held.extend(voice_rows)
    engine_rows = [r for r in held if "voices" in r and not r["real"]]
    if engine_rows:
        held.insert(0, _pooled("held-out (all synthetic engines)", engine_rows))
    rows.extend(held)
    shutil.rmtree(work, ignore_errors=True)

    print(f"checkpoint: {args.ckpt} | decoding: {how} | {args.per_voice} new sentences per voice")
    print(f"{'set':<36}{'utts':>6}{'WER':>9}{'CER':>9}{'greedy WER':>12}")
    for r in rows:
        print(
            f"{r['name']:<36}{r['utterances']:>6}{100 * r['wer']:>8.1f}%{100 * r['cer']:>8.1f}%"
            f"{100 * r['wer_greedy']:>11.1f}%"
        )
    for r in rows:
        r.pop("_pairs", None)
    result = {
        "ckpt": str(args.ckpt),
        "decoding": how,
        "heldout": asdict(cfg),
        "skipped": skipped,
        "seconds": round(time.time() - t0, 1),
        "cases": rows,
    }
    suffix = "-asr-robustness" + (f"-{args.tag}" if args.tag else "")
    name = device_name(torch.device("cpu"))
    result["path"] = str(write_result(args.out, name, suffix, **result))
    return result


def main() -> None:
    run()


if __name__ == "__main__":
    main()
