"""The embedded speech corpus: grammar sentences and short commands spoken by eSpeak NG and SVOX Pico, generated
on first use.

Speakers are an English accent with one of eSpeak NG's 13 stock variants (``voices="stock"``, the default), or
(``voices="generated"``) an English accent (``en-us``, ``en-gb-scotland``, …) with a
voice of their own: an eSpeak NG voice-variant file drawn from the speaker's seed (:func:`generate_voice`: sex,
vocal-tract scale of the formant frequencies, formant strengths and widths, pitch base and range, tone curve,
flutter, roughness, voicing and consonant strength, intonation style, Klatt or the default synthesiser, stress
lengths and amplitudes, word gaps, echo); each speaker also has a speaking rate and a pitch. With
``engines=("espeak", "pico")`` a share ``pico_share`` of every split is spoken by SVOX Pico speakers
(:mod:`lstm_seq.audio.data.pico`): each of ``pico_speakers`` is one of Pico's two English voices with a speaking
rate, a pitch and a vocal-tract factor of its own, drawn from ``(seed, speaker)``; the vocal-tract factor scales
every formant by resampling the voice (the speed perturbation of :mod:`~lstm_seq.audio.data.augment`, with rate
and pitch compensated, so a per-speaker VTLP warp). Where Pico is not installed the corpus says so and is built
from eSpeak NG alone (its config, and so its cache key, then names eSpeak only). A share ``short_fraction`` of the
utterances are short commands and isolated words (:func:`lstm_seq.audio.data.grammar.sample_short`). Speakers,
not utterances, are split into train / val / test within every engine, so every test speaker is unseen in
training. Each utterance gets mild white noise at a random SNR and a little leading/trailing silence.
``engines.json`` in the corpus records the engines that built it and their versions.

Generation is deterministic: the same :class:`SynthConfig` gives byte-identical wav and manifest
files (every random draw comes from generators seeded by ``(seed, index)``). The corpus is cached
under ``<data_dir>/speech_synth/<key>/`` where ``key`` hashes the config; a ``DONE`` file marks a
complete corpus (generation goes to a temporary folder that is renamed at the end; one left by a killed
build is removed by the next). ``sizes.json`` records every wav file's size: a file truncated or lost later is
found at the next load (one ``stat`` per file), named in a warning, and the corpus is generated again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
import random
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from lstm_seq.audio.data import pico
from lstm_seq.audio.data.augment import speed_perturb
from lstm_seq.audio.data.espeak import ESpeak, voice_data_dir
from lstm_seq.audio.data.grammar import sample_utterance
from lstm_seq.audio.data.io import resample
from lstm_seq.audio.data.manifest import Utterance, write_manifest
from lstm_seq.cpus import usable_cpus
from lstm_seq.outputs import OutputError, disk_refuses_writes
from lstm_seq.settings import check, one_of, positive, prob
from lstm_seq.stale_tmp import remove_stale, tmp_name

log = logging.getLogger(__name__)

ACCENTS = (
    "en-us",
    "en",
    "en-gb-scotland",
    "en-029",
    "en-gb-x-rp",
    "en-us-nyc",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)
# f2, f3 and f5 are left out: their breath noise is not reproducible from run to run.
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f4", "klatt", "klatt2", "klatt3", "klatt4")
SPLITS = ("train", "val", "test")
ENGINES = ("espeak", "pico")
ENGINE_NAMES = {"espeak": "eSpeak NG", "pico": "SVOX Pico"}
_VERSION = 4  # bump when generation changes, so old caches are not reused
_SHARD = 100  # utterances rendered by one fresh process (part of the output's definition)


@dataclass(frozen=True)
class SynthConfig:
    """What the corpus contains; every field is part of the cache key."""

    n_utterances: int = positive(3000)  # total over the three splits
    voices: str = one_of(
        "stock", "stock", "generated"
    )  # "stock": accent × stock variant | "generated": a voice file per speaker
    n_speakers: int = positive(400)  # speakers of a generated-voice corpus (train + val + test)
    val_speakers: int = positive(8)  # speakers held out for validation
    test_speakers: int = positive(12)  # speakers held out for test (unseen in train/val)
    val_fraction: float = prob(0.08)  # share of utterances spoken by validation speakers
    test_fraction: float = prob(0.12)  # share of utterances spoken by test speakers
    sample_rate: int = positive(16000)
    rate_wpm: tuple[int, int] = (140, 210)  # speaking-rate range (words per minute) over speakers
    pitch: tuple[int, int] = (25, 75)  # eSpeak pitch range (0-100) over speakers
    snr_db: tuple[float, float] = (15.0, 40.0)  # additive white noise, per utterance
    pad_s: tuple[float, float] = (0.05, 0.3)  # leading and trailing silence, per side
    accents: tuple[str, ...] = ACCENTS
    variants: tuple[str, ...] = VARIANTS
    seed: int = 0
    engines: tuple[str, ...] = ("espeak",)  # synthesisers: "espeak" (eSpeak NG) and/or "pico" (SVOX Pico)
    pico_share: float = prob(0.35)  # share of each split's utterances spoken by Pico speakers (with "pico")
    pico_speakers: int = positive(60)  # Pico speakers: 2 voices × drawn rate, pitch and vocal-tract factor
    pico_tract: tuple[float, float] = (0.86, 1.16)  # vocal-tract (formant) factor range over Pico speakers
    pico_pitch: tuple[float, float] = (0.8, 1.3)  # pitch-multiplier range over Pico speakers
    short_fraction: float = prob(0.15)  # share of utterances that are 1-3 word commands / isolated words
    extra: dict[str, str] = field(default_factory=dict)  # free-form, part of the key

    def __post_init__(self) -> None:
        check(self, "data.")
        bad = [e for e in self.engines if e not in ENGINES]
        if bad or not self.engines:
            raise ValueError(
                f"data.engines: {list(self.engines)} (each one of {', '.join(ENGINES)}, at least one)"
            )

    def key(self) -> str:
        blob = json.dumps({"v": _VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker."""

    name: str  # "en-gb-scotland+f2@172wpm/p41"
    voice: str  # eSpeak voice name with variant
    rate: int
    pitch: int
    voice_file: str = ""  # the text of a generated variant file (voices/!v/<variant>); "" for a stock variant
    engine: str = "espeak"  # "espeak" | "pico"
    tract: float = 1.0  # vocal-tract factor (formants × tract, by resampling; Pico speakers)


def generate_voice(rng: random.Random, name: str) -> str:
    """An eSpeak NG voice-variant file (the format of ``espeak-ng-data/voices/!v/*``) drawn from ``rng``.

    A female or male voice: pitch base 150–250 / 65–140 Hz with a top 1.15–1.9× the base; formants 0–5 scaled
    together by a vocal-tract factor (1.02–1.22 / 0.86–1.04, ±5 % each) with random strengths and widths (and
    a few Hz added to F1–F3 now and then), the weak formants 6–8 at random; a random tone curve; flutter,
    roughness, voicing and consonant strengths; intonation style 1–4; the Klatt synthesiser (variants 1–4) for
    about 40 %; random stress lengths and amplitudes; pauses between words for some; echo for some.
    ``breath`` is never used (its noise is not reproducible from run to run). Every line is explicit,
    ``klatt 0`` too, because eSpeak NG keeps a previous voice's settings where a file says nothing.
    """
    female = rng.random() < 0.5
    tract = rng.uniform(1.02, 1.22) if female else rng.uniform(0.86, 1.04)
    base = rng.uniform(150, 250) if female else rng.uniform(65, 140)
    lines = [
        "language variant",
        f"name {name}",
        f"gender {'female' if female else 'male'}",
        f"pitch {round(base)} {round(base * rng.uniform(1.15, 1.9))}",
    ]
    for k in range(9):
        freq = tract * rng.uniform(0.95, 1.05) if k <= 5 else rng.uniform(0.9, 1.15)
        strength = rng.uniform(70, 130) if k <= 5 else rng.uniform(20, 120)
        add = round(rng.uniform(-80, 80)) if 1 <= k <= 3 and rng.random() < 0.3 else 0
        lines.append(f"formant {k} {round(100 * freq)} {round(strength)} {round(rng.uniform(70, 180))} {add}")
    points = [(600, 120, 220), (1200, 90, 200), (2000, 60, 180), (3000, 30, 160)]
    tone = [f"{round(f * rng.uniform(0.8, 1.25))} {round(rng.uniform(lo, hi))}" for f, lo, hi in points]
    lines.append("tone " + " ".join(tone))
    lines.append(f"flutter {rng.choice([0, 2, 5, 8, 12, 20])}")
    lines.append(f"roughness {rng.randint(0, 5)}")
    lines.append(f"voicing {rng.randint(65, 140)}")
    lines.append(f"consonants {rng.randint(60, 140)} {rng.randint(60, 140)}")
    lines.append(f"intonation {rng.choice([1, 1, 2, 3, 4])}")
    lines.append(f"words {rng.choice([0, 0, 0, 1, 2])} 1")
    lines.append(f"klatt {rng.choice([0, 0, 0, 0, 0, 0, 1, 2, 3, 4])}")
    lines.append("stressAdd " + " ".join(str(rng.randint(-20, 40)) for _ in range(8)))
    lines.append("stressAmp " + " ".join(str(rng.randint(14, 26)) for _ in range(8)))
    echo = f"{rng.randint(10, 120)} {rng.randint(5, 25)}" if rng.random() < 0.25 else "0 0"
    lines.append(f"echo {echo}")
    return "\n".join(lines) + "\n"


def make_speakers(cfg: SynthConfig) -> dict[str, list[Speaker]]:
    """The corpus' speakers, each with its own rate and pitch, split into train/val/test, eSpeak NG's first.

    Generated voices: ``n_speakers`` speakers, each an accent with a voice file of its own
    (:func:`generate_voice`, seeded by ``(seed, speaker)``), so no voice is shared between splits. Stock
    variants: all accent × variant pairs; the held-out speakers are chosen so that each held-out
    accent+variant pair is new while the accent and the variant each still occur in training. With
    ``"pico"`` in ``engines``, the Pico speakers follow (:func:`pico_speakers`), split the same way.
    """
    out = _espeak_speakers(cfg) if "espeak" in cfg.engines else {s: [] for s in SPLITS}
    if "pico" in cfg.engines:
        for split, speakers in pico_speakers(cfg).items():
            out[split] = out[split] + speakers
    return out


def pico_speakers(cfg: SynthConfig) -> dict[str, list[Speaker]]:
    """``pico_speakers`` SVOX Pico speakers split into train/val/test (held out: the same shares of speakers as
    eSpeak NG's, at least one each). Speaker ``i`` alternates between the two voices and draws, from
    ``(seed, i)``, a speaking rate (``rate_wpm`` relative to 170 wpm), a pitch multiplier (``pico_pitch``) and a
    vocal-tract factor (``pico_tract``); a held-out speaker is a new draw of all three, never a training one."""
    n_espeak = cfg.n_speakers if cfg.voices == "generated" else len(cfg.accents) * len(cfg.variants)
    n_test = max(1, round(cfg.pico_speakers * cfg.test_speakers / n_espeak))
    n_val = max(1, round(cfg.pico_speakers * cfg.val_speakers / n_espeak))
    if n_test + n_val >= cfg.pico_speakers:
        raise ValueError(f"data.pico_speakers={cfg.pico_speakers}: too few for {n_test} test + {n_val} val")
    speakers = []
    for i in range(cfg.pico_speakers):
        rng = random.Random(f"pico-{cfg.seed}-{i}")
        voice = pico.VOICES[i % len(pico.VOICES)]
        rate, pitch = rng.randint(*cfg.rate_wpm), round(100 * rng.uniform(*cfg.pico_pitch))
        tract = round(rng.uniform(*cfg.pico_tract), 2)  # quantised like the speed perturbation
        name = f"pico:{voice}@{rate}wpm/p{pitch}/t{tract:.2f}"
        speakers.append(Speaker(name, voice, rate, pitch, engine="pico", tract=tract))
    return {
        "test": speakers[:n_test],
        "val": speakers[n_test : n_test + n_val],
        "train": speakers[n_test + n_val :],
    }


def _espeak_speakers(cfg: SynthConfig) -> dict[str, list[Speaker]]:
    if cfg.voices == "generated":
        return _generated_speakers(cfg)
    if cfg.voices != "stock":
        raise ValueError(f"voices must be 'generated' or 'stock', got {cfg.voices!r}")
    rng = random.Random(f"speakers-{cfg.seed}")
    pairs = [(a, v) for a in cfg.accents for v in cfg.variants]
    rng.shuffle(pairs)
    speakers = [
        Speaker(
            name=f"{a}+{v}@{r}wpm/p{p}",
            voice=f"{a}+{v}",
            rate=r,
            pitch=p,
        )
        for a, v in pairs
        for r, p in [(rng.randint(*cfg.rate_wpm), rng.randint(*cfg.pitch))]
    ]
    n_held = cfg.val_speakers + cfg.test_speakers
    if n_held >= len(speakers):
        raise ValueError(f"{n_held} held-out speakers but only {len(speakers)} accent × variant pairs")
    return {
        "test": speakers[: cfg.test_speakers],
        "val": speakers[cfg.test_speakers : n_held],
        "train": speakers[n_held:],
    }


def _generated_speakers(cfg: SynthConfig) -> dict[str, list[Speaker]]:
    rng = random.Random(f"speakers-{cfg.seed}")
    n_held = cfg.val_speakers + cfg.test_speakers
    if n_held >= cfg.n_speakers:
        raise ValueError(f"{n_held} held-out speakers but only n_speakers={cfg.n_speakers}")
    speakers = []
    for i in range(cfg.n_speakers):
        accent, rate, pitch = rng.choice(cfg.accents), rng.randint(*cfg.rate_wpm), rng.randint(*cfg.pitch)
        variant = f"spk{i:04d}"
        text = generate_voice(random.Random(f"voice-{cfg.seed}-{i}"), variant)
        speakers.append(
            Speaker(f"{accent}+{variant}@{rate}wpm/p{pitch}", f"{accent}+{variant}", rate, pitch, text)
        )
    return {
        "test": speakers[: cfg.test_speakers],
        "val": speakers[cfg.test_speakers : n_held],
        "train": speakers[n_held:],
    }


def _plan(cfg: SynthConfig) -> list[tuple[str, int, str, Speaker]]:
    """(split, index, sentence, speaker) for every utterance, in a fixed order. With several engines, utterance
    ``i`` of a split goes to Pico when ``floor((i + 1)·pico_share)`` steps up (evenly spread over the shards),
    each engine's speakers taking turns."""
    speakers = make_speakers(cfg)
    n_test = max(1, round(cfg.n_utterances * cfg.test_fraction))
    n_val = max(1, round(cfg.n_utterances * cfg.val_fraction))
    counts = {"train": max(1, cfg.n_utterances - n_test - n_val), "val": n_val, "test": n_test}
    rng = random.Random(f"text-{cfg.seed}")
    share = 1.0 if cfg.engines == ("pico",) else cfg.pico_share if "pico" in cfg.engines else 0.0
    plan = []
    for split in SPLITS:
        by_engine = {e: [s for s in speakers[split] if s.engine == e] for e in ENGINES}
        used = dict.fromkeys(ENGINES, 0)
        for i in range(counts[split]):
            engine = "pico" if int((i + 1) * share) > int(i * share) else "espeak"
            pool = by_engine[engine]
            spk = pool[used[engine] % len(pool)]
            used[engine] += 1
            plan.append((split, i, sample_utterance(rng, cfg.short_fraction), spk))
    return plan


def _render(
    cfg: SynthConfig, split: str, index: int, text: str, spk: Speaker, path: str, espeak_dir: str | None
) -> float:
    """Synthesise one utterance into ``path`` (eSpeak NG data from ``espeak_dir``, None = the wheel's);
    returns its duration in seconds."""
    rng = np.random.default_rng([cfg.seed, SPLITS.index(split), index])
    rate = int(spk.rate * rng.uniform(0.94, 1.06))
    if spk.engine == "pico":
        # ask for rate and pitch ÷ tract, then resample ×tract: formants × tract at the speaker's rate and pitch
        speed, pitch = rate / 170 / spk.tract, spk.pitch / 100 / spk.tract
        pcm = pico.synth(text, spk.voice, speed=speed, pitch=pitch)
        wav = speed_perturb(pcm.astype(np.float32) / 32768.0, spk.tract)
        wav = resample(wav, pico.SAMPLE_RATE, cfg.sample_rate)
    else:
        engine = ESpeak.get(espeak_dir)
        pcm = engine.synth(text, spk.voice, rate=rate, pitch=spk.pitch)
        wav = resample(pcm.astype(np.float32) / 32768.0, engine.sample_rate, cfg.sample_rate)
    peak = float(np.max(np.abs(wav))) if wav.size else 0.0
    if peak > 0:
        wav = wav * (rng.uniform(0.3, 0.9) / peak)
    pad = [int(rng.uniform(*cfg.pad_s) * cfg.sample_rate) for _ in range(2)]
    wav = np.concatenate([np.zeros(pad[0], np.float32), wav, np.zeros(pad[1], np.float32)])
    rms = float(np.sqrt(np.mean(wav**2))) if wav.size else 0.0
    snr = rng.uniform(*cfg.snr_db)
    noise = rng.standard_normal(wav.shape[0]) * (rms / (10 ** (snr / 20)) if rms > 0 else 1e-4)
    wav = np.clip(wav + noise, -1.0, 1.0).astype(np.float32)
    sf.write(path, wav, cfg.sample_rate, subtype="PCM_16", format="WAV")
    return wav.shape[0] / cfg.sample_rate


def _render_shard(jobs: list[tuple[SynthConfig, str, int, str, Speaker, str, str | None]]) -> list[float]:
    """Render a shard in order. eSpeak NG keeps internal state from one utterance to the next that
    no API call resets, so each shard runs in a fresh process (``maxtasksperchild=1``): the audio of
    an utterance then depends only on its shard, never on the number of workers or on scheduling."""
    return [_render(*job) for job in jobs]


def _context() -> mp.context.BaseContext:
    # forkserver: children fork from a clean server that never loaded eSpeak (cheap, and safe even
    # when the calling process has used eSpeak or started threads); spawn where there is none.
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])  # import once in the server, not in every child
    return ctx


def usable_engines(cfg: SynthConfig) -> SynthConfig:
    """``cfg`` with the engines that are not installed here left out, each named in a warning (the corpus is
    then built, and cached, as the config of the engines it really used); an error if none is left."""
    if "pico" not in cfg.engines or pico.available():
        return cfg
    rest = tuple(e for e in cfg.engines if e != "pico")
    if not rest:
        raise RuntimeError(f"data.engines=[pico]: {pico.MISSING}")
    log.warning(
        "%s: the corpus is built from %s only", pico.MISSING, ", ".join(ENGINE_NAMES[e] for e in rest)
    )
    return replace(cfg, engines=rest)


def engine_versions(cfg: SynthConfig) -> dict[str, str]:
    """``{engine: package version}`` of the engines of ``cfg`` (what ``engines.json`` records)."""
    from importlib import metadata

    packages = {"espeak": "espeakng-loader", "pico": "py-nanotts"}
    return {e: f"{packages[e]} {metadata.version(packages[e])}" for e in cfg.engines}


def corpus_dir(data_dir: str | os.PathLike[str], cfg: SynthConfig) -> Path:
    """Where the corpus of ``cfg`` lives under ``data_dir``."""
    return Path(data_dir) / "speech_synth" / f"v{_VERSION}-{cfg.key()}"


def build_corpus(
    data_dir: str | os.PathLike[str], cfg: SynthConfig | None = None, workers: int | None = None
) -> dict[str, Path]:
    """Generate the corpus unless it is cached; returns ``{"train"|"val"|"test": manifest path}``.

    Args:
        data_dir: cache root (e.g. ``paths.data_dir``).
        cfg: corpus settings.
        workers: synthesis processes (default: every usable core, :func:`lstm_seq.cpus.usable_cpus`).
    """
    cfg = usable_engines(cfg or SynthConfig())
    out = corpus_dir(data_dir, cfg)
    manifests = {s: out / f"{s}.jsonl" for s in SPLITS}
    remove_stale(out.parent)  # folders of builds killed before they finished
    if (out / "DONE").exists() and all(m.exists() for m in manifests.values()):
        damaged = _damaged_files(out)
        if not damaged:
            return manifests
        log.warning(
            "%s: %d audio file(s) are missing or differ in size from when the corpus was generated (%s%s); "
            "generating the corpus again",
            out, len(damaged), ", ".join(damaged[:3]), ", …" if len(damaged) > 3 else "",
        )  # fmt: skip
        (out / "DONE").unlink(missing_ok=True)  # no longer complete: replaced below
    tmp = out.with_name(tmp_name(out.name))
    shutil.rmtree(tmp, ignore_errors=True)
    for s in SPLITS:
        (tmp / "wavs" / s).mkdir(parents=True)
    plan = _plan(cfg)
    speakers = make_speakers(cfg)
    jobs = []
    for k in range(0, len(plan), _SHARD):
        # one eSpeak NG data folder per shard with just that shard's generated voices: eSpeak NG lists at most
        # 350 voice files, and with more it silently loses some ("no voice")
        part = plan[k : k + _SHARD]
        files = {spk.voice.split("+")[1]: spk.voice_file for _, _, _, spk in part if spk.voice_file}
        espeak = str(voice_data_dir(tmp / "espeak" / f"{k // _SHARD:04d}", files)) if files else None
        jobs += [(cfg, s, i, t, spk, str(tmp / "wavs" / s / f"{i:05d}.wav"), espeak) for s, i, t, spk in part]
    shards = [jobs[k : k + _SHARD] for k in range(0, len(jobs), _SHARD)]
    workers = max(1, min(workers or usable_cpus(), len(shards)))
    try:
        with _context().Pool(workers, maxtasksperchild=1) as pool:
            durations = [d for shard in pool.map(_render_shard, shards, chunksize=1) for d in shard]
    except Exception as exc:  # libsndfile says "System error." for a full disk: say which folder, and why
        why = disk_refuses_writes(tmp)
        if why is None:
            raise
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"cannot write {tmp}: {why} (generating the speech corpus)") from exc
    for split in SPLITS:
        rows = [
            Utterance(str(tmp / "wavs" / s / f"{i:05d}.wav"), round(d, 4), t)
            for (s, i, t, _), d in zip(plan, durations, strict=True)
            if s == split
        ]
        write_manifest(tmp / f"{split}.jsonl", rows, relative=True)
    if len(cfg.engines) > 1:  # the test split of each engine too, for in-domain WER per engine
        for engine in cfg.engines:
            rows = [
                Utterance(str(tmp / "wavs" / "test" / f"{i:05d}.wav"), round(d, 4), t)
                for (s, i, t, spk), d in zip(plan, durations, strict=True)
                if s == "test" and spk.engine == engine
            ]
            write_manifest(tmp / f"test-{engine}.jsonl", rows, relative=True)
    shutil.rmtree(
        tmp / "espeak", ignore_errors=True
    )  # links into the wheel; the voice files are in speakers.json
    speakers = {k: [asdict(s) for s in v] for k, v in speakers.items()}
    (tmp / "speakers.json").write_text(json.dumps(speakers, indent=1, sort_keys=True) + "\n")
    (tmp / "config.json").write_text(json.dumps(asdict(cfg), indent=1, sort_keys=True) + "\n")
    (tmp / "engines.json").write_text(json.dumps(engine_versions(cfg), indent=1, sort_keys=True) + "\n")
    _record_sizes(tmp)
    (tmp / "DONE").write_text("ok\n")
    _install(tmp, out)
    return manifests


SIZES = "sizes.json"  # {wav path relative to the corpus folder: bytes}, checked at every load


def _record_sizes(folder: Path) -> None:
    sizes = {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.glob("wavs/*/*.wav"))}
    (folder / SIZES).write_text(json.dumps(sizes, indent=0, sort_keys=True) + "\n")


def _damaged_files(folder: Path) -> list[str]:
    """The corpus' wav files (relative paths) that are missing or whose size differs from :data:`SIZES`
    (one ``stat`` per file). A corpus written before the record existed gets one now (where it can be written)."""
    record = folder / SIZES
    if not record.exists():
        try:
            _record_sizes(folder)
        except OSError:  # a read-only copy: used unchecked, as before
            pass
        return []
    try:
        sizes = json.loads(record.read_text())
    except ValueError:
        return [SIZES]
    damaged = []
    for rel, size in sizes.items():
        try:
            ok = (folder / rel).stat().st_size == size
        except OSError:
            ok = False
        if not ok:
            damaged.append(rel)
    return damaged


def _install(tmp: Path, out: Path) -> None:
    """Rename the finished ``tmp`` to ``out``. A complete corpus another process put there first is kept
    (it may be in use): then ``tmp`` is dropped. An incomplete ``out`` (no DONE) is moved aside, then removed."""
    if out.exists() and not (out / "DONE").exists():
        aside = out.with_name(tmp_name(out.name + ".old"))
        try:
            os.replace(out, aside)
        except OSError:
            pass
        if (aside / "DONE").exists():  # finished by another process just now: put it back
            try:
                os.replace(aside, out)
            except OSError:
                pass
        shutil.rmtree(aside, ignore_errors=True)
    try:
        os.replace(tmp, out)  # fails when out is a non-empty folder: another process finished first
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
