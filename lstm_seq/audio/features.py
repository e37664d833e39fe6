"""MFCC or log-mel features (one set of explicit settings, :class:`FeatureConfig`) and SpecAugment.

Pipeline per utterance::

    power spectrogram  |STFT(w)|²    n_fft, hop, Hann window (periodic), centre padding optional
    mel filterbank     M · S        HTK or Slaney mel scale, filter norm None or "slaney"
    log                log(max(M·S, log_floor))          an absolute floor: no clip-relative dB clamp
    DCT-II (ortho)     first n_mfcc coefficients          ``kind="mfcc"``; ``kind="logmel"`` keeps the n_mels bands
    deltas (optional)  Δ and ΔΔ with a ±delta_window/2 regression, edge frames replicated
    CMVN               ``cmvn``: "utterance" (mean/variance over the clip's valid frames), "global" (fixed
                       statistics of the training set, stored in the checkpoint: streaming needs no whole
                       clip) or "none"

Without centre padding (the default) frame ``t`` covers samples ``[t·hop, t·hop + n_fft)``, so the
features of a chunk that starts at a multiple of ``hop`` equal the same frames of the whole clip
(before CMVN and away from the delta window at the chunk's edges).

Training, test, transcription and export all use :class:`MFCC` (torchaudio kernels, batched on the model's
device, with the VTLP filterbank warp of augmentation). :func:`librosa_mfcc` computes the same settings with
librosa on the CPU: it is the reference the tests hold :class:`MFCC` to (≤ 1e-3 relative error), not a front end
a model can be trained with (so it is no setting).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torchaudio.functional as AF
from torch import Tensor, nn

from lstm_seq.audio.data.augment import warp_filterbanks
from lstm_seq.audio.data.io import AudioReadError, load_audio
from lstm_seq.settings import at_least, check, from_dict, one_of, positive, prob

if TYPE_CHECKING:
    from lstm_seq.audio.data.datasets import SpeechDataset

CMVN_MODES = ("utterance", "global", "none")
CMVN_LEGACY = {"true": "utterance", "false": "none"}


@dataclass(frozen=True)
class FeatureConfig:
    """Every setting of the front end, with its default and its rule (``conf/features/mfcc.yaml`` overrides some);
    stored in checkpoints so inference matches training."""

    sample_rate: int = positive(16000)
    n_fft: int = positive(400)  # 25 ms window at 16 kHz
    hop_length: int = positive(160)  # 10 ms
    n_mels: int = positive(40)
    n_mfcc: int = positive(13)  # cepstra kept (before Δ and ΔΔ); unused for kind="logmel"
    f_min: float = at_least(0, 20.0)
    f_max: float | None = positive(None)  # None = sample_rate / 2
    mel_scale: str = one_of("htk", "htk", "slaney")
    mel_norm: str | None = one_of(None, None, "slaney")  # "slaney": area normalisation
    center: bool = False  # centre padding (reflect); False keeps chunk features exact
    log_floor: float = positive(1e-6)  # log(max(mel power, floor)); no clip-relative dB clamp
    deltas: bool = True  # append Δ and ΔΔ
    delta_window: int = positive(5)
    cmvn: str = (
        "utterance"  # "utterance" | "global" (training-set statistics) | "none"; true/false = old names
    )
    kind: str = one_of("mfcc", "mfcc", "logmel")  # MFCC, or the n_mels log-mel bands themselves (no DCT)

    def __post_init__(self) -> None:
        # checkpoints and configs before the global option say cmvn: true/false (a string field may hold "True")
        name = str(self.cmvn).lower() if isinstance(self.cmvn, bool | str) else None
        mode = CMVN_LEGACY.get(name, name) if name is not None else None
        if mode not in CMVN_MODES:
            raise ValueError(f"features.cmvn must be one of {CMVN_MODES} (or true/false), got {self.cmvn!r}")
        object.__setattr__(self, "cmvn", mode)
        check(self, "features.")

    @property
    def coefficients(self) -> int:
        """Static values per frame, before Δ and ΔΔ: ``n_mfcc`` (MFCC) or ``n_mels`` (log-mel)."""
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    @property
    def dim(self) -> int:
        """Feature size F per frame."""
        return self.coefficients * (3 if self.deltas else 1)

    def num_frames(self, num_samples: Tensor | int) -> Tensor | int:
        """Frames produced from ``num_samples`` samples (0 when shorter than one window)."""
        if self.center:
            return num_samples // self.hop_length + 1
        if isinstance(num_samples, Tensor):
            return torch.where(
                num_samples >= self.n_fft, (num_samples - self.n_fft) // self.hop_length + 1, 0
            )
        return (num_samples - self.n_fft) // self.hop_length + 1 if num_samples >= self.n_fft else 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | FeatureConfig | None) -> FeatureConfig:
        """From :meth:`to_dict` (a checkpoint's ``features``); an unknown key raises :class:`ValueError`.
        Checkpoints before the backend setting was removed store ``backend``: every one of them ran the
        torchaudio front end whatever it said, so it is dropped."""
        if isinstance(d, FeatureConfig):
            return d
        return from_dict(cls, {k: v for k, v in (d or {}).items() if k != "backend"}, "features")


@dataclass(frozen=True)
class SpecAugmentConfig:
    """SpecAugment (Park et al., 2019) in training: ``conf/features`` ``specaugment`` (null = off)."""

    freq_masks: int = at_least(0, 1)  # masks over feature bins per utterance
    freq_width: int = at_least(0, 4)  # widest frequency mask
    time_masks: int = at_least(0, 1)  # masks over frames per utterance
    time_width: int = at_least(0, 10)  # widest time mask (frames)
    max_time_frac: float = prob(0.1)  # a time mask covers at most this share of the utterance

    def __post_init__(self) -> None:
        check(self, "features.specaugment.")


def cmvn(feats: Tensor, lengths: Tensor, eps: float = 1e-5) -> Tensor:
    """Mean/variance normalise each utterance over its valid frames; padding stays zero.

    Args:
        feats: (B, T, F).
        lengths: (B,) valid frames.
    Returns:
        (B, T, F).
    """
    mask = (torch.arange(feats.shape[1], device=feats.device)[None, :] < lengths[:, None]).unsqueeze(-1)
    n = lengths.clamp(min=1).to(feats.dtype)[:, None, None]
    mean = (feats * mask).sum(1, keepdim=True) / n
    var = (((feats - mean) * mask) ** 2).sum(1, keepdim=True) / n
    return (feats - mean) / torch.sqrt(var + eps) * mask


class MFCC(nn.Module):
    """Batched MFCC (or log-mel: ``cfg.kind``) front end (torchaudio kernels) on the module's device.

    ``forward(wave (B, N), lengths (B,) samples, warp (B,) | None) -> (feats (B, T, F), frames (B,))``;
    ``warp`` gives per-utterance VTLP factors (training augmentation, :func:`~lstm_seq.audio.data.augment.warp_filterbanks`).
    """

    def __init__(self, cfg: FeatureConfig) -> None:
        super().__init__()
        self.cfg = cfg
        f_max = cfg.f_max or cfg.sample_rate / 2
        fb = AF.melscale_fbanks(
            cfg.n_fft // 2 + 1, cfg.f_min, f_max, cfg.n_mels, cfg.sample_rate, cfg.mel_norm, cfg.mel_scale
        )
        self.register_buffer("fbanks", fb, persistent=False)  # (n_freqs, n_mels)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)
        # (n_mels, coefficients): the DCT-II for MFCC; the identity for log-mel, so every user of ``log-mel @ dct``
        # (this front end, streaming, export) computes either kind
        if cfg.kind == "mfcc":
            dct = AF.create_dct(cfg.n_mfcc, cfg.n_mels, norm="ortho")
        else:
            dct = torch.eye(cfg.n_mels)
        self.register_buffer("dct", dct, persistent=False)
        if (
            cfg.cmvn == "global"
        ):  # training-set statistics (fit_global_cmvn): in the state dict, so in checkpoints
            self.register_buffer("cmvn_mean", torch.zeros(cfg.dim))  # (F,)
            self.register_buffer("cmvn_std", torch.ones(cfg.dim))  # (F,)
            self.register_buffer(
                "cmvn_frames", torch.zeros((), dtype=torch.long)
            )  # frames counted; 0 = unfitted

    @torch.no_grad()
    def forward(self, wave: Tensor, lengths: Tensor, warp: Tensor | None = None) -> tuple[Tensor, Tensor]:
        feats, frames = self.unnormalised(wave, lengths, warp)
        return self.normalise(feats, frames), frames

    @torch.no_grad()
    def unnormalised(
        self, wave: Tensor, lengths: Tensor, warp: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """The features before CMVN: (B, T, F) float32 (zero past each length), frames (B,)."""
        cfg = self.cfg
        with torch.autocast(device_type=wave.device.type, enabled=False):
            wave = wave.float()
            if wave.shape[-1] < cfg.n_fft:  # a batch of clips all shorter than one window
                wave = torch.nn.functional.pad(wave, (0, cfg.n_fft - wave.shape[-1]))
            spec = torch.stft(
                wave,
                cfg.n_fft,
                cfg.hop_length,
                cfg.n_fft,
                self.window,
                center=cfg.center,
                pad_mode="reflect",
                return_complex=True,
            )  # (B, n_freqs, T)
            power = spec.real**2 + spec.imag**2
            if warp is not None and bool((warp != 1).any()):
                fb = warp_filterbanks(self.fbanks, warp.to(self.fbanks.device))  # (B, n_freqs, n_mels)
                mel = torch.bmm(power.transpose(1, 2), fb)  # (B, T, n_mels)
            else:
                mel = torch.matmul(power.transpose(1, 2), self.fbanks)  # (B, T, n_mels)
            feats = torch.log(mel.clamp(min=cfg.log_floor)) @ self.dct  # (B, T, coefficients)
            frames = torch.as_tensor(cfg.num_frames(lengths.to(wave.device)), device=wave.device)
            frames = frames.clamp(max=feats.shape[1])
            if cfg.deltas:
                feats = add_deltas(feats, frames, cfg.delta_window)
            mask = torch.arange(feats.shape[1], device=feats.device)[None] < frames[:, None]
        return feats * mask[..., None], frames

    @property
    def fitted(self) -> bool:
        """False while ``cmvn="global"`` has no statistics yet (:func:`fit_global_cmvn`)."""
        return self.cfg.cmvn != "global" or int(self.cmvn_frames) > 0

    def normalise(self, feats: Tensor, frames: Tensor) -> Tensor:
        """CMVN as configured: feats (B, T, F) unnormalised, frames (B,) → (B, T, F), zero past each length."""
        if self.cfg.cmvn == "utterance":
            return cmvn(feats, frames)
        if self.cfg.cmvn == "global":
            feats = (feats - self.cmvn_mean) / self.cmvn_std
        mask = torch.arange(feats.shape[1], device=feats.device)[None] < frames[:, None]
        return feats * mask[..., None]


@torch.no_grad()
def fit_global_cmvn(
    featurizer: MFCC, waves: Iterable[np.ndarray | Tensor], batch_size: int = 16, eps: float = 1e-5
) -> int:
    """Set the ``cmvn="global"`` statistics of ``featurizer`` from clips (e.g. the training split).

    Mean and standard deviation ``sqrt(var + eps)`` of every feature over all valid frames of ``waves``
    (each (N,) at ``cfg.sample_rate``), accumulated in float64. Returns the number of frames counted.
    """
    if featurizer.cfg.cmvn != "global":
        raise ValueError(f"fit_global_cmvn needs features.cmvn='global', not {featurizer.cfg.cmvn!r}")
    dev = featurizer.fbanks.device
    total = torch.zeros(featurizer.cfg.dim, dtype=torch.float64, device=dev)
    total_sq = torch.zeros_like(total)
    count = 0

    def add(batch: list[Tensor]) -> None:
        nonlocal count
        lengths = torch.tensor([len(w) for w in batch], device=dev)
        wave = torch.nn.utils.rnn.pad_sequence(batch, batch_first=True).to(dev)
        feats, frames = featurizer.unnormalised(wave, lengths)
        f = feats.double()  # zero past each length: padding adds nothing to the sums
        total.add_(f.sum((0, 1)))
        total_sq.add_((f**2).sum((0, 1)))
        count += int(frames.sum())

    batch: list[Tensor] = []
    for w in waves:
        batch.append(torch.as_tensor(w, dtype=torch.float32).reshape(-1))
        if len(batch) == batch_size:
            add(batch)
            batch = []
    if batch:
        add(batch)
    if count == 0:
        raise ValueError("fit_global_cmvn: no feature frames in the clips given")
    mean = total / count
    var = (total_sq / count - mean**2).clamp(min=0)
    featurizer.cmvn_mean.copy_(mean.float())
    featurizer.cmvn_std.copy_(torch.sqrt(var + eps).float())
    featurizer.cmvn_frames.fill_(count)
    return count


CMVN_UTTERANCES = 1000  # the global CMVN statistics come from at most this many training utterances


def fit_dataset_cmvn(featurizer: MFCC, dataset: SpeechDataset, max_utterances: int = CMVN_UTTERANCES) -> int:
    """Set ``featurizer``'s global CMVN statistics (``cmvn="global"``) from a training split: the clips as
    read from disk (no augmentation), every k-th one so that at most ``max_utterances`` are used; unreadable
    files are skipped. Returns the frames counted. ``ASRModule.on_fit_start`` calls it once per run."""
    paths = [path for path, _, _ in dataset.items]
    step = max(1, -(-len(paths) // max_utterances))

    def clips() -> Iterator[np.ndarray]:
        for path in paths[::step]:
            try:
                yield load_audio(path, featurizer.cfg.sample_rate)
            except AudioReadError:
                continue

    return fit_global_cmvn(featurizer, clips())


def add_deltas(feats: Tensor, frames: Tensor, win: int) -> Tensor:
    """Append Δ and ΔΔ (regression over ±win//2 frames, edge frames replicated per utterance).

    Args:
        feats: (B, T, C); frames: (B,) valid lengths.
    Returns:
        (B, T, 3C).
    """
    # replicate each utterance's last valid frame into its padding, so deltas at the end are exact
    t = torch.arange(feats.shape[1], device=feats.device)
    idx = torch.minimum(t[None, :], (frames - 1).clamp(min=0)[:, None])  # (B, T)
    x = torch.gather(feats, 1, idx[..., None].expand_as(feats)).transpose(1, 2)  # (B, C, T)
    gather_t = idx[:, None, :].expand_as(x)
    d1 = torch.gather(AF.compute_deltas(x, win_length=win, mode="replicate"), 2, gather_t)
    d2 = AF.compute_deltas(d1, win_length=win, mode="replicate")
    return torch.cat([x, d1, d2], dim=1).transpose(1, 2)


def librosa_mfcc(wave: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Reference MFCC (or log-mel, ``cfg.kind``) of one clip with librosa (CPU): (N,) samples → (T, F), the same settings.

    Note: librosa compiles its numba kernels on the first call in a process (tens of seconds).
    """
    import librosa
    import scipy.signal

    mel = librosa.feature.melspectrogram(
        y=wave.astype(np.float32),
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.n_fft,
        window="hann",
        center=cfg.center,
        pad_mode="reflect",
        power=2.0,
        n_mels=cfg.n_mels,
        fmin=cfg.f_min,
        fmax=cfg.f_max or cfg.sample_rate / 2,
        htk=cfg.mel_scale == "htk",
        norm=cfg.mel_norm,
    )  # (n_mels, T)
    logmel = np.log(np.maximum(mel, cfg.log_floor))
    if cfg.kind == "mfcc":
        feats = librosa.feature.mfcc(S=logmel, n_mfcc=cfg.n_mfcc, dct_type=2, norm="ortho")  # (C, T)
    else:
        feats = logmel  # (n_mels, T)
    if cfg.deltas:
        d1 = scipy.signal.savgol_filter(feats, cfg.delta_window, 1, deriv=1, axis=-1, mode="nearest")
        d2 = scipy.signal.savgol_filter(d1, cfg.delta_window, 1, deriv=1, axis=-1, mode="nearest")
        feats = np.concatenate([feats, d1, d2], axis=0)
    feats = feats.T  # (T, F)
    if cfg.cmvn == "utterance" and feats.shape[0] > 0:
        feats = (feats - feats.mean(0)) / np.sqrt(feats.var(0) + 1e-5)
    return feats.astype(np.float32)


def compute_features(
    waves: list[np.ndarray] | Tensor,
    cfg: FeatureConfig,
    lengths: Tensor | None = None,
    module: MFCC | None = None,
    backend: str = "torchaudio",
) -> tuple[Tensor, Tensor]:
    """Features of a batch.

    Args:
        waves: list of (N_i,) arrays, or a padded (B, N) tensor with ``lengths``.
        cfg: the front-end settings.
        module: a prebuilt :class:`MFCC` (its device is used) for the torchaudio backend.
        backend: "torchaudio" (:class:`MFCC`, what models use) or "librosa" (:func:`librosa_mfcc`, the CPU
            reference of the tests).
    Returns:
        feats (B, T, F) float32, frames (B,) long.
    """
    if isinstance(waves, list):
        lengths = torch.tensor([len(w) for w in waves], dtype=torch.long)
        wave = torch.zeros(len(waves), max(1, int(lengths.max())) if len(waves) else 1)
        for i, w in enumerate(waves):
            wave[i, : len(w)] = torch.as_tensor(w)
    else:
        wave = waves
        assert lengths is not None, "a padded tensor needs lengths"
    if backend == "torchaudio":
        mod = module if module is not None else MFCC(cfg)
        dev = mod.fbanks.device
        return mod(wave.to(dev), lengths.to(dev))
    if backend == "librosa":
        if cfg.cmvn == "global":
            raise ValueError("the librosa backend is the reference of cmvn='utterance'/'none' only")
        outs = [librosa_mfcc(wave[i, : int(n)].cpu().numpy(), cfg) for i, n in enumerate(lengths)]
        frames = torch.tensor([o.shape[0] for o in outs], dtype=torch.long)
        feats = torch.zeros(len(outs), max(1, int(frames.max())) if outs else 1, cfg.dim)
        for i, o in enumerate(outs):
            feats[i, : o.shape[0]] = torch.from_numpy(o)
        return feats, frames
    raise ValueError(f"backend must be 'torchaudio' or 'librosa', got {backend!r}")


class SpecAugment(nn.Module):
    """Time and frequency masking (Park et al., 2019), applied only in training mode.

    ``forward(feats (B, T, F), frames (B,)) -> (B, T, F)``; masked values are set to 0 (the mean
    after CMVN). Time masks are at most ``max_time_frac`` of each utterance's length.
    """

    def __init__(
        self,
        freq_masks: int = SpecAugmentConfig.freq_masks,
        freq_width: int = SpecAugmentConfig.freq_width,
        time_masks: int = SpecAugmentConfig.time_masks,
        time_width: int = SpecAugmentConfig.time_width,
        max_time_frac: float = SpecAugmentConfig.max_time_frac,
    ) -> None:
        super().__init__()
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width, self.max_time_frac = time_masks, time_width, max_time_frac

    def forward(self, feats: Tensor, frames: Tensor) -> Tensor:
        if not self.training:
            return feats
        B, T, F = feats.shape
        dev = feats.device
        keep = torch.ones(B, T, F, dtype=torch.bool, device=dev)
        f_idx = torch.arange(F, device=dev)[None, :]
        for _ in range(self.freq_masks):
            w = torch.randint(0, self.freq_width + 1, (B, 1), device=dev)
            f0 = (torch.rand(B, 1, device=dev) * (F - w).clamp(min=1)).long()
            keep &= ~((f_idx >= f0) & (f_idx < f0 + w))[:, None, :]
        t_idx = torch.arange(T, device=dev)[None, :]
        max_w = torch.minimum(
            torch.full_like(frames, self.time_width), (frames.float() * self.max_time_frac).long()
        )[:, None]
        for _ in range(self.time_masks):
            w = (torch.rand(B, 1, device=dev) * (max_w + 1).float()).long()
            t0 = (torch.rand(B, 1, device=dev) * (frames[:, None] - w).clamp(min=1).float()).long()
            keep &= ~((t_idx >= t0) & (t_idx < t0 + w))[:, :, None]
        return feats * keep
