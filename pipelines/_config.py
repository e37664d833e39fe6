"""How the pipelines' configs are composed: one primary config per task (:data:`TASKS`: ``conf/asr.yaml`` trains,
``conf/asr_test.yaml`` tests, …), Hydra schemas built from the library's settings dataclasses, the ``${smoke:…}``
and ``${launch_dir:}`` resolvers, and :func:`validate`.

Where a setting is defined. Every setting of the library — features, model, augmentation, loading, decoding,
optimiser, encoder, decoder — is defined once, with its default and its rule (> 0, a probability, a choice), on a
field of a dataclass in ``lstm_seq`` (e.g. :class:`lstm_seq.audio.features.FeatureConfig`; the rules are
:mod:`lstm_seq.settings`). The schemas here are those dataclasses, registered in Hydra's ConfigStore as they are
or extended by the few keys that only a run has (``data.name``, ``data.smoke``, the files of a corpus, the
trainer, ``ckpt``, ``device``, …). ``conf/*.yaml`` shows every value, written from them by
``python -m pipelines.conf_values`` (tests/pipelines/test_config_defaults.py checks it).

One entry point per task. ``python -m pipelines.asr`` (train) composes ``conf/asr.yaml``,
``python -m pipelines.asr.test`` ``conf/asr_test.yaml``, and so on (:data:`TASKS`); each primary starts its
defaults list with its schema (``<config name>_schema``) and holds only the keys and groups its task uses — a
test config has no trainer, a transcribe config no data. A required input is ``???`` in the primary (``ckpt``,
``audio_dir``, ``image_dir``); ``data.root`` of ``asr_prepare`` is required by its field's metadata (the data
options are shared with training, where it is unused).

Types and key names are checked by Hydra while it composes: every option of the groups ``data``, ``features``,
``model``, ``decode``, ``augment``, ``encoder``, ``decoder`` starts with the schema of its kind (``-
/schema/<pipeline>/<group>/<kind>@_here_``). A misspelt key, a key of another task (``trainer.max_epochs`` in a
test) or a value of the wrong type fails at start with Hydra's message naming the key; ``+key=value`` still adds
a key on purpose.

Values are checked by :func:`validate`, which each entry point's ``main`` calls first, before any work: the
rules of the fields (the same ones the library dataclasses check when they are built), the input paths that must
exist for this task and the inputs it needs; the first problem is reported as one
:class:`~pipelines._hydra.ConfigError` line naming the key (``missing ckpt=PATH``).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Any

import yaml
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lstm_seq.audio.data.augment import AugmentConfig
from lstm_seq.audio.data.datamodule import LoaderConfig as SpeechLoaderConfig
from lstm_seq.audio.data.importers import import_ljspeech
from lstm_seq.audio.data.synth import SynthConfig
from lstm_seq.audio.decoding.decode import DecodeConfig
from lstm_seq.audio.features import FeatureConfig, SpecAugmentConfig
from lstm_seq.audio.model import ModelConfig
from lstm_seq.audio.recognizer import CHUNK_S
from lstm_seq.settings import at_least, like, one_of, positive, prob, value_problem
from lstm_seq.training.optim import OptimConfig
from lstm_seq.vision.data.datasets import LoaderConfig as ImageLoaderConfig
from lstm_seq.vision.data.synth import SceneConfig
from lstm_seq.vision.decoder import AttentionDecoderConfig as LibAttentionDecoderConfig
from lstm_seq.vision.decoder import DecoderConfig
from lstm_seq.vision.encoder import EncoderConfig
from lstm_seq.vision.generate import GenerateConfig
from lstm_seq.vision.module import CaptionModelConfig
from pipelines._hydra import ConfigError, paste_command, resolve_path

__all__ = ["ASRConfig", "AttentionDecoderConfig", "CaptionConfig", "register", "validate"]


def input_path(
    default: Any, kind: str, checked: Sequence[str], required: Sequence[str] = (), placeholder: str = "PATH"
) -> Any:
    """A path read by the run: must exist (a ``kind`` = "file" or "dir") when set and the task (train, test,
    prepare, …: :attr:`Task.kind`) is in ``checked``; must be set when the task is in ``required``
    (``placeholder`` is what the message asks for: ``missing data.root=DIR``)."""
    meta = {"path": kind, "checked": tuple(checked), "required": tuple(required), "placeholder": placeholder}
    return field(default=default, metadata=meta)


def schema(cls: type, *extra: tuple[str, Any, Any], name: str | None = None) -> type:
    """The Hydra schema of the library settings class ``cls``: its fields (types, defaults and rules taken from
    ``cls``, not restated) plus the run's own ``extra`` fields, as a plain, writable dataclass (the library's
    classes are frozen, which OmegaConf would make read-only)."""
    hints = typing.get_type_hints(cls)
    names = {e[0] for e in extra}  # an extra field of the name of a library one replaces it
    own = [(f.name, hints[f.name], like(cls, f.name)) for f in dataclasses.fields(cls) if f.name not in names]
    doc = f"Schema of {cls.__module__}.{cls.__qualname__}."
    return make_dataclass(name or cls.__name__, own + list(extra), namespace={"__doc__": doc})


def extend(name: str, base: type, *extra: tuple[str, Any, Any]) -> type:
    """Schema ``base`` plus ``extra`` fields (e.g. a corpus' own keys)."""
    return make_dataclass(name, list(extra), bases=(base,))


def _like(cls: type, *names: str) -> list[tuple[str, Any, Any]]:
    """Fields ``names`` of the library dataclass ``cls`` (type, default and rule), for a schema that exposes them."""
    hints = typing.get_type_hints(cls)
    return [(n, hints[n], like(cls, n)) for n in names]


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

    # also write checkpoints/last.ckpt every N optimizer steps (0 = at epoch ends only; every epoch end always)
    checkpoint_every_n_steps: int = at_least(0, 50)
    # stop after N batches in a row with a NaN/inf loss or gradient (0 = never)
    max_consecutive_bad_batches: int = at_least(0, 10)


@dataclass
class ObjectiveConfig:
    """What a sweep optimises: the value ``main`` returns and the order of sweep_summary.md."""

    metric: str = MISSING  # a key of metrics.json, e.g. test/wer
    direction: str = one_of("minimize", "minimize", "maximize")


# conf/optim: AdamW and the learning-rate schedule, the same settings for both pipelines
# (lstm_seq.training.optim.OptimConfig; each pipeline's defaults list picks a file of conf/optim/)
OptimSchema = schema(OptimConfig)


@dataclass
class RunConfig:
    """The keys both training configs share; each pipeline's schema adds its own."""

    seed: int = 0
    paths: PathsConfig = field(default_factory=PathsConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: dict[str, Any] | None = None
    resilience: ResilienceConfig = field(default_factory=ResilienceConfig)
    optim: OptimSchema = field(default_factory=OptimSchema)  # type: ignore[valid-type]


# ----------------------------------------------------------------------------------------------------------- ASR

# conf/data: the loader's settings (lstm_seq.audio.data.datamodule.LoaderConfig) + what names the corpus
ASRDataConfig = schema(
    SpeechLoaderConfig,
    ("name", str, field(default=MISSING)),
    ("smoke", bool, field(default=False)),  # debug=smoke: tiny data
    ("sample_rate", int, like(FeatureConfig, "sample_rate")),
    name="ASRDataConfig",
)
# the embedded eSpeak NG corpus: the fields of lstm_seq.audio.data.synth.SynthConfig a run may set
SpeechSynthDataConfig = extend(
    "SpeechSynthDataConfig",
    ASRDataConfig,
    *_like(SynthConfig, "n_utterances", "voices", "n_speakers", "rate_wpm", "val_speakers", "test_speakers"),
    *_like(SynthConfig, "val_fraction", "test_fraction", "snr_db", "seed"),
    *_like(SynthConfig, "engines", "pico_share", "pico_speakers", "short_fraction"),
    ("smoke_utterances", int, positive(160)),  # n_utterances with debug=smoke
    ("synth_workers", int | None, positive(None)),  # synthesis processes (None = CPUs, at most 4)
)
_MANIFEST = input_path(MISSING, "file", checked=("train", "test"))
ManifestDataConfig = extend(
    "ManifestDataConfig",
    ASRDataConfig,
    ("train_manifest", str, _MANIFEST),
    ("val_manifest", str, input_path(MISSING, "file", checked=("train", "test"))),
    ("test_manifest", str, input_path(MISSING, "file", checked=("train", "test"))),
    ("smoke_utterances", int, positive(64)),  # with debug=smoke only the first ones of each manifest
    # audio files on disk, read speech up to ~17 s: a larger frame budget than the short synthetic utterances,
    # and worker processes to decode the files (the defaults of LoaderConfig suit the small cached corpus)
    ("max_frames", int, positive(20000)),
    ("num_workers", int, at_least(0, 2)),
)
# a public corpus on disk: ``python -m pipelines.asr.prepare data.root=…`` writes the manifests into manifest_dir
ImportedDataConfig = extend(
    "ImportedDataConfig",
    ManifestDataConfig,
    (
        "root",
        str | None,
        input_path(None, "dir", checked=("prepare",), required=("prepare",), placeholder="DIR"),
    ),
    ("manifest_dir", str, field(default=MISSING)),
)
_LJ = inspect.signature(import_ljspeech).parameters  # the importer's own defaults
LJSpeechDataConfig = extend(  # one speaker: split by utterance (a hash of each id)
    "LJSpeechDataConfig",
    ImportedDataConfig,
    ("val_fraction", float, prob(_LJ["val_fraction"].default)),
    ("test_fraction", float, prob(_LJ["test_fraction"].default)),
)
# conf/features: lstm_seq.audio.features.FeatureConfig + SpecAugment (training only; null = off)
SpecAugmentSchema = schema(SpecAugmentConfig)
FeaturesConfig = schema(
    FeatureConfig,
    ("specaugment", SpecAugmentSchema | None, field(default_factory=SpecAugmentSchema)),
    name="FeaturesConfig",
)
ASRModelConfig, ASRDecodeConfig = schema(ModelConfig), schema(DecodeConfig)


AugmentSchema = schema(AugmentConfig)


@dataclass
class ASRCallbacksConfig:
    early_stopping_patience: int | None = positive(
        4
    )  # validation epochs without a better val/wer (null = never)


@dataclass
class ASRConfig(RunConfig):
    """``python -m pipelines.asr``: train, then test (conf/asr.yaml)."""

    ckpt: str | None = input_path(None, "file", checked=("train",))  # a checkpoint to resume training from
    data: ASRDataConfig = MISSING  # type: ignore[valid-type]  # each option brings the schema of its kind
    features: FeaturesConfig = MISSING  # type: ignore[valid-type]
    model: ASRModelConfig = field(default_factory=ASRModelConfig)  # type: ignore[valid-type]
    decode: ASRDecodeConfig = field(default_factory=ASRDecodeConfig)  # type: ignore[valid-type]
    augment: AugmentSchema | None = None  # type: ignore[valid-type]  # waveform augmentation of the training split (conf/augment)
    callbacks: ASRCallbacksConfig = field(default_factory=ASRCallbacksConfig)
    plot_utterances: int = at_least(0, 4)  # test utterances drawn as PNGs after training (0 = none)
    objective: ObjectiveConfig = field(default_factory=lambda: ObjectiveConfig("test/wer", "minimize"))


def _model_file(task: str) -> Any:
    return input_path(MISSING, "file", checked=(task,), required=(task,))


@dataclass
class ASRTestConfig:
    """``python -m pipelines.asr.test``: evaluate a checkpoint on the configured test set (conf/asr_test.yaml)."""

    seed: int = 0
    paths: PathsConfig = field(default_factory=PathsConfig)
    ckpt: str = _model_file("test")  # the checkpoint to evaluate; its vocabulary and features are used
    device: str = "cpu"  # cpu | cuda
    data: ASRDataConfig = MISSING  # type: ignore[valid-type]
    decode: ASRDecodeConfig = field(default_factory=ASRDecodeConfig)  # type: ignore[valid-type]


@dataclass
class ASRTranscribeConfig:
    """``python -m pipelines.asr.transcribe``: audio files → transcripts.jsonl (conf/asr_transcribe.yaml)."""

    seed: int = 0
    paths: PathsConfig = field(default_factory=PathsConfig)
    ckpt: str = _model_file("transcribe")  # the model
    # folder of audio files (searched recursively)
    audio_dir: str = input_path(
        MISSING, "dir", checked=("transcribe",), required=("transcribe",), placeholder="DIR"
    )
    chunk_s: float = positive(CHUNK_S)  # longest piece of audio decoded at once (s); longer files are chunked
    device: str = "cpu"  # cpu | cuda
    decode: ASRDecodeConfig = field(default_factory=ASRDecodeConfig)  # type: ignore[valid-type]


@dataclass
class ASRExportConfig:
    """``python -m pipelines.asr.export``: ONNX files of the acoustic model into <run dir>/export
    (conf/asr_export.yaml)."""

    seed: int = 0
    paths: PathsConfig = field(default_factory=PathsConfig)
    ckpt: str = _model_file("export")  # the model


@dataclass
class ASRPrepareConfig:
    """``python -m pipelines.asr.prepare``: import a public corpus (data.root) into manifests
    (conf/asr_prepare.yaml)."""

    seed: int = 0
    paths: PathsConfig = field(default_factory=PathsConfig)
    data: ASRDataConfig = MISSING  # type: ignore[valid-type]


# ------------------------------------------------------------------------------------------------------- caption

# conf/data: the loader's settings (lstm_seq.vision.data.datasets.LoaderConfig) + what names the corpus
CaptionDataConfig = schema(
    ImageLoaderConfig,
    ("name", str, field(default=MISSING)),
    ("smoke", bool, field(default=False)),
    ("cache_dir", str | None, field(default="${paths.data_dir}")),  # the feature cache of a run's data
    name="CaptionDataConfig",
)
# the embedded scenes: the fields of lstm_seq.vision.data.synth.SceneConfig a run may set
ScenesDataConfig = extend(
    "ScenesDataConfig",
    CaptionDataConfig,
    *_like(SceneConfig, "n_train", "n_val", "n_test", "max_objects", "captions_per_image", "seed"),
)


def _files(kind: str) -> Any:
    return input_path(MISSING, kind, checked=("train", "test"))


@dataclass
class SplitFilesConfig:
    train: str = _files("file")
    val: str = _files("file")
    test: str = _files("file")


@dataclass
class SplitDirsConfig:
    train: str = _files("dir")
    val: str = _files("dir")
    test: str = _files("dir")


CocoDataConfig = extend(
    "CocoDataConfig",
    CaptionDataConfig,
    ("annotations", SplitFilesConfig, field(default_factory=SplitFilesConfig)),
    ("image_dirs", SplitDirsConfig, field(default_factory=SplitDirsConfig)),
)
FlickrDataConfig = extend(
    "FlickrDataConfig",
    CaptionDataConfig,
    ("token_file", str, _files("file")),
    ("image_dir", str, _files("dir")),
    # optional: without them a 90/5/5 split by image name
    ("split_files", dict[str, str] | None, field(default=None)),
)
KarpathyDataConfig = extend(
    "KarpathyDataConfig",
    CaptionDataConfig,
    ("json_file", str, _files("file")),
    ("image_dir", str, _files("dir")),
)


CaptionEncoderConfig, CaptionGenerateConfig = schema(EncoderConfig), schema(GenerateConfig)
CaptionDecoderConfig = schema(DecoderConfig, name="DecoderConfig")
AttentionDecoderConfig = extend(  # the attention decoder's own key: from the library class
    "AttentionDecoderConfig", CaptionDecoderConfig, *_like(LibAttentionDecoderConfig, "attention_dim")
)
CaptionModelSchema = schema(CaptionModelConfig)


@dataclass
class CaptionConfig(RunConfig):
    """``python -m pipelines.caption``: train, then test (conf/caption.yaml)."""

    ckpt: str | None = input_path(None, "file", checked=("train",))  # a checkpoint to resume training from
    data: CaptionDataConfig = MISSING  # type: ignore[valid-type]  # each option brings the schema of its kind
    encoder: CaptionEncoderConfig = field(default_factory=CaptionEncoderConfig)  # type: ignore[valid-type]
    decoder: CaptionDecoderConfig = MISSING  # type: ignore[valid-type]
    model: CaptionModelSchema = field(default_factory=CaptionModelSchema)  # type: ignore[valid-type]
    # torch.set_num_threads; null = torch's default (on a small shared CPU one thread was the fastest)
    threads: int | None = positive(1)
    objective: ObjectiveConfig = field(default_factory=lambda: ObjectiveConfig("test/cider", "maximize"))


@dataclass
class CaptionTestConfig:
    """``python -m pipelines.caption.test``: evaluate a checkpoint on the configured test split
    (conf/caption_test.yaml)."""

    seed: int = 0
    paths: PathsConfig = field(default_factory=PathsConfig)
    ckpt: str = _model_file("test")  # the checkpoint to evaluate; its vocabulary and image transform are used
    device: str = "cpu"  # cpu | cuda
    data: CaptionDataConfig = MISSING  # type: ignore[valid-type]
    # torch.set_num_threads; null = torch's default (on a small shared CPU one thread was the fastest)
    threads: int | None = positive(1)


@dataclass
class CaptionGenerateTaskConfig:
    """``python -m pipelines.caption.generate``: caption a folder of images → captions.jsonl + captions.html
    (conf/caption_generate.yaml)."""

    seed: int = 0
    paths: PathsConfig = field(default_factory=PathsConfig)
    ckpt: str = _model_file("generate")  # the model
    image_dir: str = input_path(
        MISSING, "dir", checked=("generate",), required=("generate",), placeholder="DIR"
    )  # searched recursively
    device: str = "cpu"  # cpu | cuda
    generate: CaptionGenerateConfig = field(default_factory=CaptionGenerateConfig)  # type: ignore[valid-type]
    # torch.set_num_threads; null = torch's default (on a small shared CPU one thread was the fastest)
    threads: int | None = positive(1)


@dataclass
class CaptionExportConfig:
    """``python -m pipelines.caption.export``: ONNX encoder + decoder step into <run dir>/export
    (conf/caption_export.yaml)."""

    seed: int = 0
    paths: PathsConfig = field(default_factory=PathsConfig)
    ckpt: str = _model_file("export")  # the model
    # torch.set_num_threads; null = torch's default (on a small shared CPU one thread was the fastest)
    threads: int | None = positive(1)


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
    "asr/decode": {"greedy": ASRDecodeConfig, "beam_lm": ASRDecodeConfig},
    "asr/augment": {"waveform": AugmentSchema},
    "caption/data": {
        "scenes": ScenesDataConfig,
        "coco": CocoDataConfig,
        "flickr": FlickrDataConfig,
        "karpathy": KarpathyDataConfig,
    },
    "caption/encoder": {"cnn": CaptionEncoderConfig},
    "caption/decoder": {"show_tell": CaptionDecoderConfig, "attention": AttentionDecoderConfig},
}


@dataclass(frozen=True)
class Task:
    """One entry point: ``python -m pipelines.<module>`` composes primary config ``conf/<name>.yaml``, whose
    defaults list starts with ``<name>_schema`` (:attr:`schema`) and picks :attr:`groups`. :attr:`kind` is the
    task the schemas' input paths name in ``checked``/``required`` (train, test, transcribe, …)."""

    module: str
    kind: str
    schema: type
    groups: tuple[str, ...]

    def accepts(self, key: str) -> bool:
        """Whether an override of ``key`` (``data.root``, ``decode``, ``+experiment``) is a key or group of
        this task's config."""
        top = key.lstrip("+~").split(".", 1)[0].split("/", 1)[0]
        return top in self.groups or top in {f.name for f in dataclasses.fields(self.schema)}

    def options(self) -> dict[str, str]:
        """The group options the task's primary config picks (``{"data": "speech_synth", …}``)."""
        config = Path(__file__).resolve().parents[1] / "conf" / f"{self.module.replace('.', '_')}.yaml"
        entries = yaml.safe_load(config.read_text(encoding="utf-8")).get("defaults") or []
        return {str(k): str(v) for e in entries if isinstance(e, dict) for k, v in e.items()}

    def command(self, ckpt: str, *placeholders: str) -> str:
        """The line a training run prints to run this task on its checkpoint (:func:`paste_command` with
        what this task accepts and its primary's options), e.g. ``python -m pipelines.asr.test … ckpt=…``."""
        return paste_command(self.module, {"ckpt": ckpt}, placeholders, self.accepts, self.options())


# config name -> the entry point that composes it; each entry point's main calls validate(cfg) first
_TRAIN_ASR = (
    "paths",
    "hydra",
    "trainer",
    "logger",
    "data",
    "features",
    "model",
    "decode",
    "augment",
    "optim",
)
_TRAIN_CAPTION = ("paths", "hydra", "trainer", "logger", "data", "encoder", "decoder", "optim")
TASKS: dict[str, Task] = {
    "asr": Task("asr", "train", ASRConfig, (*_TRAIN_ASR, "debug", "experiment")),
    "asr_test": Task("asr.test", "test", ASRTestConfig, ("paths", "hydra", "data", "decode", "debug")),
    "asr_transcribe": Task("asr.transcribe", "transcribe", ASRTranscribeConfig, ("paths", "hydra", "decode")),
    "asr_export": Task("asr.export", "export", ASRExportConfig, ("paths", "hydra")),
    "asr_prepare": Task("asr.prepare", "prepare", ASRPrepareConfig, ("paths", "hydra", "data")),
    "caption": Task("caption", "train", CaptionConfig, (*_TRAIN_CAPTION, "debug", "experiment")),
    "caption_test": Task("caption.test", "test", CaptionTestConfig, ("paths", "hydra", "data", "debug")),
    "caption_generate": Task("caption.generate", "generate", CaptionGenerateTaskConfig, ("paths", "hydra")),
    "caption_export": Task("caption.export", "export", CaptionExportConfig, ("paths", "hydra")),
}


def task_of(cfg: DictConfig) -> Task | None:
    """The task whose schema typed ``cfg`` (the first entry of its primary's defaults list); else the task of
    the running Hydra app's config name; None outside both."""
    kind = OmegaConf.get_type(cfg)
    for task in TASKS.values():
        if task.schema is kind:
            return task
    if HydraConfig.initialized():
        return TASKS.get(str(HydraConfig.get().job.config_name))
    return None


def schema_node(cls: type) -> DictConfig:
    """The structured config of dataclass ``cls``, writable: the library's settings classes are frozen (read-only
    in OmegaConf), but a config file and the command line must be able to override them."""
    node = OmegaConf.structured(cls)

    def unlock(n: DictConfig) -> None:
        OmegaConf.set_readonly(n, False)
        for key in n.keys():
            if not OmegaConf.is_missing(n, key) and isinstance(n._get_node(key), DictConfig):
                unlock(n._get_node(key))  # type: ignore[arg-type]

    unlock(node)
    return node


def _smoke(full: Any, small: Any, *, _root_: DictConfig) -> Any:
    """``${smoke:FULL,SMOKE}``: SMOKE when ``data.smoke`` is true (``debug=smoke``), else FULL."""
    return small if OmegaConf.select(_root_, "data.smoke", default=False) else full


def register() -> None:
    """Register the schemas in Hydra's ConfigStore and the ``smoke`` and ``launch_dir`` resolvers
    (idempotent)."""
    cs = ConfigStore.instance()
    for name, task in TASKS.items():
        cs.store(name=f"{name}_schema", node=schema_node(task.schema))
    for group, nodes in SCHEMAS.items():
        for name, node in nodes.items():
            cs.store(group=f"schema/{group}", name=name, node=schema_node(node))
    if not OmegaConf.has_resolver("smoke"):
        OmegaConf.register_new_resolver("smoke", _smoke)
    if not OmegaConf.has_resolver("launch_dir"):
        # Hydra never changes directory (job.chdir: false), so the working directory is the launch
        # directory; unlike ${hydra:runtime.cwd} this also resolves where Hydra's own config is not set
        # yet — a sweeper computing hydra.sweep.dir — and in the compose API.
        OmegaConf.register_new_resolver("launch_dir", os.getcwd)


register()

# -------------------------------------------------------------------------------------------------- validation


def _path_problem(key: str, value: Any, meta: dict[str, Any]) -> str | None:
    """An input path that does not exist (or is of the wrong kind), or None."""
    path, kind = resolve_path(str(value)), meta["path"]
    where = f"{key}={value}" + ("" if str(path) == str(value) else f" ({path})")
    if not path.exists():
        return f"{where}: no such {'file' if kind == 'file' else 'directory'}"
    if kind == "file" and not path.is_file():
        return f"{where}: not a file"
    if kind == "dir" and not path.is_dir():
        return f"{where}: not a directory"
    return None


def _walk(node: DictConfig, prefix: str, task: str | None, problems: list[str], needs: list[str]) -> None:
    schema = OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(schema):
        return
    for f in dataclasses.fields(schema):
        if f.name not in node.keys():
            continue
        key, meta = f"{prefix}{f.name}", dict(f.metadata)
        relevant = "checked" not in meta or task in meta["checked"]
        if OmegaConf.is_missing(node, f.name):
            if task in meta.get("required", ()):  # a required input (``???`` in the task's config)
                needs.append(f"{key}={meta['placeholder']}")
            elif relevant:
                problems.append(f"{key} is not set")
            continue
        try:
            value = node[f.name]
        except OmegaConfBaseException as exc:
            problems.append(f"{key}: {str(exc).splitlines()[0]}")
            continue
        if task in meta.get("required", ()) and value in (None, ""):
            needs.append(f"{key}={meta['placeholder']}")
            continue
        if isinstance(value, DictConfig):
            _walk(value, f"{key}.", task, problems, needs)
        elif not isinstance(value, ListConfig):
            problem = value_problem(key, value, meta)  # the library's rule of the field
            if problem is None and value is not None and "path" in meta and task in meta["checked"]:
                problem = _path_problem(key, value, meta)
            if problem:
                problems.append(problem)


def validate(cfg: DictConfig) -> None:
    """Check the values of a composed config of one task (:data:`TASKS`) — the rules of the schema's fields,
    the input paths that this task reads and the keys it needs — and raise :class:`ConfigError` with one line
    naming the first bad key (and how many more there are), e.g. ``missing ckpt=PATH`` or
    ``missing data.root=DIR``."""
    task = task_of(cfg)
    problems: list[str] = []
    needs: list[str] = []
    _walk(cfg, "", task.kind if task else None, problems, needs)
    if needs:
        problems.insert(0, f"missing {' and '.join(needs)}")
    if problems:
        more = (
            f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
            if len(problems) > 1
            else ""
        )
        raise ConfigError(problems[0] + more)
