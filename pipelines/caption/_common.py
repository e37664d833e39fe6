"""What the captioning entry points share."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from lstm_seq.settings import field_names
from lstm_seq.vision.data.corpus import Corpus, load_corpus
from lstm_seq.vision.data.datasets import LoaderConfig
from pipelines._hydra import plain, resolve_path

# conf/data keys that are loader settings (the fields of LoaderConfig) or name the run's data; the others are
# the corpus' own (files, folders, sizes)
LOADER_KEYS = (*field_names(LoaderConfig), "smoke", "name")


def corpus(cfg: DictConfig) -> Corpus:
    opts = {k: v for k, v in plain(cfg.data).items() if k not in LOADER_KEYS}
    return load_corpus(cfg.data.name, resolve_path(cfg.paths.data_dir), bool(cfg.data.smoke), **opts)


def set_threads(cfg: DictConfig) -> None:
    """``threads``: torch.set_num_threads (null = torch's default)."""
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
