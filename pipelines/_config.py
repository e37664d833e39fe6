"""Structured-config schemas of the two pipelines and the value checks run before any work.

Types and key names are checked by Hydra while it composes: every primary config starts its defaults list with
its schema (``asr_schema`` / ``caption_schema``, registered below in Hydra's ConfigStore), and every option of
the groups ``data``, ``features``, ``model``, ``decode``, ``encoder``, ``decoder`` starts with the schema of its
kind (``- /schema/<pipeline>/<group>/<kind>@_here_``; options whose keys differ, such as each dataset, have
their own). A misspelt key or a value of the wrong type then fails at start with Hydra's own message naming
the key; ``+key=value`` still adds a key on purpose.

Values are checked by :func:`validate`, from the ``metadata`` of the schema fields (positive sizes,
probabilities in [0, 1], choices, input paths that must exist, keys a mode needs), and the first problem is
reported as one :class:`~pipelines._hydra.ConfigError` line naming the key.

Importing this module registers the schemas and the ``${smoke:FULL,SMOKE}`` resolver (the value used without and
with ``debug=smoke``; experiment presets use it to stay runnable on tiny data).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lstm_seq.audio.data.augment import AugmentConfig
from lstm_seq.vision.data.augment import ImageAugment
from pipelines._hydra import ConfigError, resolve_path

# --------------------------------------------------------------------------------------------------- field kinds


def _field(default: Any, **meta: Any) -> Any:
    return field(default=default, metadata=meta)


def positive(default: Any = MISSING) -> Any:
    """A number > 0 (``None`` allowed where the type is optional)."""
    return _field(default, low=0, low_open=True)


def at_least(low: float, default: Any = MISSING) -> Any:
    """A number ≥ ``low``."""
    return _field(default, low=low)


def prob(default: Any = MISSING) -> Any:
    """A probability or fraction in [0, 1]."""
    return _field(default, low=0, high=1)


def one_of(default: Any, *choices: Any) -> Any:
    """One of ``choices``."""
    return _field(default, choices=choices)


def input_path(
    default: Any, kind: str, checked: Sequence[str], required: Sequence[str] = (), placeholder: str = "PATH"
) -> Any:
    """A path read by the run: must exist (a ``kind`` = "file" or "dir") when set and ``mode`` is in
    ``checked``; must be set when ``mode`` is in ``required``."""
    return _field(
        default, path=kind, checked=tuple(checked), required=tuple(required), placeholder=placeholder
    )


# -------------------------------------------------------------------------------------------------- shared nodes


@dataclass
class PathsConfig:
    root_dir: str = MISSING  # the launch directory (${launch_dir:})
    data_dir: str = MISSING  # generated corpora and caches
    output_dir: str = MISSING  # run and sweep directories


@dataclass
class TrainerConfig:
    """Keyword arguments of lightning.pytorch.Trainer (the common ones; Lightning's defaults)."""

    _target_: str = "lightning.pytorch.Trainer"
    accelerator: str = "cpu"
    devices: Any = 1  # int, "auto" or a list of ids
    strategy: Any = "auto"
    num_nodes: int = positive(1)
    precision: Any = "auto"  # auto = bf16-mixed on a GPU, 32-true on CPU
    max_epochs: int = positive(10)
    max_steps: int = -1
    gradient_clip_val: float | None = at_least(0, None)
    accumulate_grad_batches: int = positive(1)
    log_every_n_steps: int = positive(10)
    check_val_every_n_epoch: int = positive(1)
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    limit_test_batches: Any = None
    deterministic: Any = False
    enable_progress_bar: bool = True
    num_sanity_val_steps: int = at_least(-1, 0)


@dataclass
class ResilienceConfig:
    """Fault tolerance (lstm_seq.training.fault_tolerance_callbacks)."""

    checkpoint_every_n_steps: int = at_least(
        0, 50
    )  # also write last.ckpt every N optimizer steps (0 = per epoch)
    max_consecutive_bad_batches: int = at_least(0, 10)  # stop after N non-finite batches in a row (0 = never)


@dataclass
class ObjectiveConfig:
    """What a sweep optimises: the value ``main`` returns and the order of sweep_summary.md."""

    metric: str = MISSING  # a key of metrics.json, e.g. test/wer
    direction: str = one_of("minimize", "minimize", "maximize")


@dataclass
class RunConfig:
    """The keys both pipelines share; each pipeline's schema adds its own."""

    seed: int = 0
    paths: PathsConfig = field(default_factory=PathsConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: dict[str, Any] | None = None
    resilience: ResilienceConfig = field(default_factory=ResilienceConfig)


# ----------------------------------------------------------------------------------------------------------- ASR


@dataclass
class ASRDataConfig:
    name: str = MISSING
    smoke: bool = False  # debug=smoke: tiny data
    sample_rate: int = positive(16000)
    max_duration: float = positive(20.0)  # seconds; longer utterances are skipped
    max_frames: int = positive(20000)  # padded feature frames per batch
    num_workers: int = at_least(0, 0)


@dataclass
class SpeechSynthDataConfig(ASRDataConfig):
    n_utterances: int = positive(3000)
    smoke_utterances: int = positive(160)
    # "stock": accent × stock variant | "generated": an eSpeak NG voice file per speaker
    voices: str = one_of("stock", "stock", "generated")
    n_speakers: int = positive(400)  # speakers of a generated-voice corpus
    rate_wpm: list[int] = field(default_factory=lambda: [140, 210])  # speaking rates over speakers
    val_speakers: int = positive(8)
    test_speakers: int = positive(12)
    val_fraction: float = prob(0.08)
    test_fraction: float = prob(0.12)
    snr_db: list[float] = field(default_factory=lambda: [15.0, 40.0])
    seed: int = 0
    synth_workers: int | None = positive(None)


@dataclass
class ManifestDataConfig(ASRDataConfig):
    train_manifest: str = input_path(MISSING, "file", checked=("train", "test"))
    val_manifest: str = input_path(MISSING, "file", checked=("train", "test"))
    test_manifest: str = input_path(MISSING, "file", checked=("train", "test"))
    smoke_utterances: int = positive(64)
    num_workers: int = at_least(0, 2)


@dataclass
class ImportedDataConfig(ManifestDataConfig):
    """A public corpus on disk: ``mode=prepare data.root=…`` writes the manifests into manifest_dir."""

    root: str | None = input_path(None, "dir", checked=("prepare",), required=("prepare",), placeholder="DIR")
    manifest_dir: str = MISSING


@dataclass
class LJSpeechDataConfig(ImportedDataConfig):
    val_fraction: float = prob(0.03)
    test_fraction: float = prob(0.03)


@dataclass
class SpecAugmentConfig:
    freq_masks: int = at_least(0, 1)
    freq_width: int = at_least(0, 4)
    time_masks: int = at_least(0, 1)
    time_width: int = at_least(0, 10)
    max_time_frac: float = prob(0.1)


@dataclass
class FeaturesConfig:
    """lstm_seq.audio.features.FeatureConfig + SpecAugment."""

    backend: str = one_of("torchaudio", "torchaudio", "librosa")
    sample_rate: int = positive(16000)
    n_fft: int = positive(400)
    hop_length: int = positive(160)
    n_mels: int = positive(40)
    n_mfcc: int = positive(13)
    f_min: float = at_least(0, 20.0)
    f_max: float | None = positive(None)
    mel_scale: str = one_of("htk", "htk", "slaney")
    mel_norm: str | None = one_of(None, None, "slaney")
    center: bool = False
    log_floor: float = positive(1e-6)
    deltas: bool = True
    delta_window: int = positive(5)
    cmvn: bool = True
    specaugment: SpecAugmentConfig | None = None


@dataclass
class ASRModelConfig:
    """lstm_seq.audio.model.ModelConfig."""

    subsample: int = one_of(4, 1, 2, 4)  # conv subsampling in time
    conv_channels: int = positive(16)
    hidden_size: int = positive(128)  # LSTM units per direction
    num_layers: int = positive(2)
    bidirectional: bool = True
    dropout: float = prob(0.1)
    forget_bias: float | None = 1.0
    lstm_backend: str = "auto"


@dataclass
class ASROptimConfig:
    lr: float = positive(3e-3)  # peak of the one-cycle schedule (AdamW)
    weight_decay: float = at_least(0, 1e-2)
    pct_start: float = prob(0.1)


@dataclass
class DecodeConfig:
    beam: bool = False


@dataclass
class BeamLMDecodeConfig(DecodeConfig):
    """lstm_seq.audio.decoding.decode.BeamConfig."""

    beam: bool = True
    beam_size: int = positive(50)
    lm_order: int = at_least(0, 3)
    lm_weight: float | None = None  # None: tuned on validation after training (else 1.0)
    word_score: float | None = None  # None: tuned on validation after training (else 0.0)
    tune_lm_weights: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
    tune_word_scores: list[float] = field(default_factory=lambda: [-1.0, 0.0, 1.0, 2.0])
    lexicon: bool = True
    beam_threshold: float = positive(25.0)
    backend: str = one_of("torch", "torch", "flashlight")


@dataclass
class ASRCallbacksConfig:
    early_stopping_patience: int | None = positive(4)


@dataclass
class TranscribeConfig:
    chunk_s: float = positive(20.0)
    device: str = "cpu"


@dataclass
class ASRConfig(RunConfig):
    mode: str = one_of("train", "train", "test", "transcribe", "prepare")
    ckpt: str | None = input_path(
        None, "file", checked=("train", "test", "transcribe"), required=("test", "transcribe")
    )
    audio_dir: str | None = input_path(
        None, "dir", checked=("transcribe",), required=("transcribe",), placeholder="DIR"
    )
    data: ASRDataConfig = MISSING
    features: FeaturesConfig = MISSING
    model: ASRModelConfig = MISSING
    optim: ASROptimConfig = field(default_factory=ASROptimConfig)
    decode: DecodeConfig = MISSING
    # conf/augment: the library dataclass is the schema (it holds every default)
    augment: AugmentConfig | None = None
    callbacks: ASRCallbacksConfig = field(default_factory=ASRCallbacksConfig)
    plot_utterances: int = at_least(0, 4)
    transcribe: TranscribeConfig = field(default_factory=TranscribeConfig)
    objective: ObjectiveConfig = field(default_factory=lambda: ObjectiveConfig("test/wer", "minimize"))


# ------------------------------------------------------------------------------------------------------- caption


@dataclass
class CaptionDataConfig:
    name: str = MISSING
    smoke: bool = False
    image_size: int = positive(224)
    batch_size: int = positive(32)
    num_workers: int = at_least(0, 0)
    train_captions: int = positive(5)  # captions per image per training step
    feature_cache: bool = False
    cache_dir: str = MISSING
    min_freq: int = positive(1)
    max_len: int = positive(24)
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    # training-time augmentation; the library dataclass is the schema (it holds every default); null = off
    augment: ImageAugment | None = None


@dataclass
class ScenesDataConfig(CaptionDataConfig):
    n_train: int = positive(4000)
    n_val: int = positive(250)
    n_test: int = positive(500)
    max_objects: int = positive(3)
    captions_per_image: int = positive(5)
    seed: int = 0


@dataclass
class SplitFilesConfig:
    train: str = input_path(MISSING, "file", checked=("train", "test"))
    val: str = input_path(MISSING, "file", checked=("train", "test"))
    test: str = input_path(MISSING, "file", checked=("train", "test"))


@dataclass
class SplitDirsConfig:
    train: str = input_path(MISSING, "dir", checked=("train", "test"))
    val: str = input_path(MISSING, "dir", checked=("train", "test"))
    test: str = input_path(MISSING, "dir", checked=("train", "test"))


@dataclass
class CocoDataConfig(CaptionDataConfig):
    annotations: SplitFilesConfig = field(default_factory=SplitFilesConfig)
    image_dirs: SplitDirsConfig = field(default_factory=SplitDirsConfig)
    max_pixels: int = positive(50_000_000)


@dataclass
class FlickrDataConfig(CaptionDataConfig):
    token_file: str = input_path(MISSING, "file", checked=("train", "test"))
    image_dir: str = input_path(MISSING, "dir", checked=("train", "test"))
    split_files: dict[str, str] | None = None  # optional: without them a 90/5/5 split by image name
    max_pixels: int = positive(50_000_000)


@dataclass
class KarpathyDataConfig(CaptionDataConfig):
    json_file: str = input_path(MISSING, "file", checked=("train", "test"))
    image_dir: str = input_path(MISSING, "dir", checked=("train", "test"))
    max_pixels: int = positive(50_000_000)


@dataclass
class EncoderConfig:
    """lstm_seq.vision.encoder.CNNEncoder."""

    name: str = MISSING  # a torchvision classifier
    weights: str | None = (
        None  # null | path/to/weights.pth | a torchvision weight name (from the torch cache)
    )
    output_stride: int = one_of(32, 8, 16, 32)
    grid_size: int | None = positive(None)
    frozen: bool = False
    hue_pool: bool = False  # first conv max-pooled over the 3 cyclic RGB shifts: a trunk blind to hue
    colour_channels: int = at_least(0, 0)  # > 0: a per-pixel colour path of this width appended to the grid
    lr_factor: float = at_least(0, 1.0)


@dataclass
class DecoderConfig:
    variant: str = one_of(MISSING, "show_tell", "attention")
    embed_dim: int = positive(128)
    hidden_size: int = positive(256)
    num_layers: int = positive(1)
    dropout: float = prob(0.3)


@dataclass
class AttentionDecoderConfig(DecoderConfig):
    attention_dim: int = positive(128)


@dataclass
class CaptionModelConfig:
    """Keyword arguments of lstm_seq.vision.module.CaptionModule."""

    lr: float = positive(3e-3)
    weight_decay: float = at_least(0, 1e-4)
    warmup_steps: int = at_least(0, 100)
    att_reg: float = at_least(0, 0.1)
    sampling_max: float = prob(0.0)
    sampling_start_epoch: int = at_least(0, 2)
    sampling_ramp_epochs: int = at_least(0, 4)
    beam_size: int = positive(3)
    max_len: int = positive(24)
    length_penalty: float = 0.0
    word_dropout: float = prob(0.0)
    no_repeat_ngram: int = at_least(0, 0)  # n of the repeated-n-gram penalty in search (0 = off)
    repeat_penalty: float = at_least(0, 0.0)  # nats off a word that repeats an n-gram (inf = forbid)
    coverage_penalty: float = at_least(0, 0.0)  # beta of the attention-coverage term in beam search
    repeat_words: list[str] | None = None  # penalise only repeated n-grams that end in these words


@dataclass
class GenerateConfig:
    batch_size: int = positive(32)
    num_workers: int = at_least(0, 2)
    max_pixels: int = positive(50_000_000)
    thumbnail: int = positive(160)


@dataclass
class CaptionConfig(RunConfig):
    mode: str = one_of("train", "train", "test", "generate")
    ckpt: str | None = input_path(
        None, "file", checked=("train", "test", "generate"), required=("test", "generate")
    )
    image_dir: str | None = input_path(
        None, "dir", checked=("generate",), required=("generate",), placeholder="DIR"
    )
    data: CaptionDataConfig = MISSING
    encoder: EncoderConfig = MISSING
    decoder: DecoderConfig = MISSING
    model: CaptionModelConfig = field(default_factory=CaptionModelConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    threads: int | None = positive(1)
    objective: ObjectiveConfig = field(default_factory=lambda: ObjectiveConfig("test/cider", "maximize"))


# ---------------------------------------------------------------------------------------------- registration

SCHEMAS: dict[str, dict[str, type]] = {
    "asr/data": {
        "speech_synth": SpeechSynthDataConfig,
        "manifest": ManifestDataConfig,
        "imported": ImportedDataConfig,
        "ljspeech": LJSpeechDataConfig,
    },
    "asr/features": {"mfcc": FeaturesConfig},
    "asr/model": {"lstm_ctc": ASRModelConfig},
    "asr/decode": {"greedy": DecodeConfig, "beam_lm": BeamLMDecodeConfig},
    "asr/augment": {"waveform": AugmentConfig},
    "caption/data": {
        "scenes": ScenesDataConfig,
        "coco": CocoDataConfig,
        "flickr": FlickrDataConfig,
        "karpathy": KarpathyDataConfig,
    },
    "caption/encoder": {"cnn": EncoderConfig},
    "caption/decoder": {"show_tell": DecoderConfig, "attention": AttentionDecoderConfig},
}


def _smoke(full: Any, small: Any, *, _root_: DictConfig) -> Any:
    """``${smoke:FULL,SMOKE}``: SMOKE when ``data.smoke`` is true (``debug=smoke``), else FULL."""
    return small if OmegaConf.select(_root_, "data.smoke", default=False) else full


def register() -> None:
    """Register the schemas in Hydra's ConfigStore and the ``smoke`` and ``launch_dir`` resolvers
    (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="asr_schema", node=ASRConfig)
    cs.store(name="caption_schema", node=CaptionConfig)
    for group, nodes in SCHEMAS.items():
        for name, node in nodes.items():
            cs.store(group=f"schema/{group}", name=name, node=node)
    if not OmegaConf.has_resolver("smoke"):
        OmegaConf.register_new_resolver("smoke", _smoke)
    if not OmegaConf.has_resolver("launch_dir"):
        # Hydra never changes directory (job.chdir: false), so the working directory is the launch
        # directory; unlike ${hydra:runtime.cwd} this also resolves where Hydra's own config is not set
        # yet — a sweeper computing hydra.sweep.dir — and in the compose API.
        OmegaConf.register_new_resolver("launch_dir", os.getcwd)


register()

# -------------------------------------------------------------------------------------------------- validation


def _check_value(key: str, value: Any, meta: dict[str, Any], mode: str | None) -> str | None:
    """The problem with ``value`` (one line naming ``key``), or None."""
    if value is None:
        return None
    if "choices" in meta and value not in meta["choices"]:
        choices = ", ".join(str(c) for c in meta["choices"])
        return f"{key}={value!r} is not one of: {choices}"
    if "low" in meta and isinstance(value, int | float) and not isinstance(value, bool):
        low, high = meta["low"], meta.get("high")
        if not math.isfinite(value):
            return f"{key}={value} must be a finite number"
        if meta.get("low_open") and not value > low:
            return f"{key}={value} must be > {low}"
        if value < low or (high is not None and value > high):
            return (
                f"{key}={value} must be in [{low}, {high}]"
                if high is not None
                else f"{key}={value} must be ≥ {low}"
            )
    if "path" in meta and mode in meta["checked"]:
        path, kind = resolve_path(str(value)), meta["path"]
        where = f"{key}={value}" + ("" if str(path) == str(value) else f" ({path})")
        if not path.exists():
            return f"{where}: no such {'file' if kind == 'file' else 'directory'}"
        if kind == "file" and not path.is_file():
            return f"{where}: not a file"
        if kind == "dir" and not path.is_dir():
            return f"{where}: not a directory"
    return None


def _walk(node: DictConfig, prefix: str, mode: str | None, problems: list[str], needs: list[str]) -> None:
    schema = OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(schema):
        return
    for f in dataclasses.fields(schema):
        if f.name not in node.keys():
            continue
        key, meta = f"{prefix}{f.name}", dict(f.metadata)
        relevant = "checked" not in meta or mode in meta["checked"]
        if OmegaConf.is_missing(node, f.name):
            if relevant:
                problems.append(f"{key} is not set")
            continue
        try:
            value = node[f.name]
        except OmegaConfBaseException as exc:
            problems.append(f"{key}: {str(exc).splitlines()[0]}")
            continue
        if mode in meta.get("required", ()) and value in (None, ""):
            needs.append(f"{key}={meta['placeholder']}")
            continue
        if isinstance(value, DictConfig):
            _walk(value, f"{key}.", mode, problems, needs)
        elif not isinstance(value, ListConfig):
            problem = _check_value(key, value, meta, mode)
            if problem:
                problems.append(problem)


def validate(cfg: DictConfig) -> None:
    """Check the values of a composed pipeline config against the ``metadata`` of its schema; raise
    :class:`ConfigError` with one line naming the first bad key (and how many more there are)."""
    try:
        mode = cfg.get("mode")
    except OmegaConfBaseException as exc:
        raise ConfigError(f"mode: {str(exc).splitlines()[0]}") from None
    problems: list[str] = []
    needs: list[str] = []
    _walk(cfg, "", mode, problems, needs)
    if needs:
        problems.insert(0, f"mode={mode} needs {' and '.join(needs)}")
    if problems:
        more = (
            f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
            if len(problems) > 1
            else ""
        )
        raise ConfigError(problems[0] + more)
