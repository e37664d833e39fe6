"""Waveform augmentation for training: speed, vocal-tract length, EQ and band limiting, reverberation, noise, gain.

As in Kaldi/NeMo/SpeechBrain/ESPnet recipes, each training utterance is perturbed on the fly, in the dataset's
``__getitem__`` (so in DataLoader workers when there are any), from a generator seeded by the utterance's
``(seed, epoch, index)`` seed (:class:`~lstm_seq.training.sampler.SeededIndex`): the same epoch gives the same
audio with any number of workers, after a resume too. Validation and test datasets never get an augmenter.

Per utterance, in this order (each step with its own probability)::

    speed        resample by a factor s in ``speed`` (tempo and pitch ×s, duration ÷s), Kaldi-style
    reverb       convolve with a synthetic room impulse response (direct path, sparse early reflections,
                 exponentially decaying noise tail with RT60 in ``rt60_s``), mixed at a direct-to-reverberant ratio
    eq           a random smooth gain curve over log frequency (``eq_bands`` knots, ±``eq_db``) and a random
                 spectral tilt (±``tilt_db`` per octave), i.e. another microphone / another voice quality
    band limit   high-pass below ``highpass_hz`` and low-pass above ``lowpass_hz``; with ``telephone_p`` the
                 telephone band 300–3400 Hz instead
    noise        coloured noise (power ∝ 1/f^β, β in ``noise_colour``: 0 white, 1 pink, 2 brown) at an SNR in
                 ``noise_snr_db``
    babble       1–``babble_max`` other training utterances summed, at an SNR in ``babble_snr_db``
    gain         ×10^(g/20), g in ``gain_db``; samples clipped to [-1, 1]

Vocal-tract-length perturbation (VTLP, Jaitly & Hinton 2013) is not a waveform operation: :meth:`Augmenter.draw`
draws a per-utterance warp factor α in ``vtlp`` that the batch carries to the feature front end, which warps
its mel filterbank for that utterance (:func:`warp_filterbanks`).

All arrays are float32 mono waveforms ``(N,)`` at ``sample_rate``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
from scipy import fft as sp_fft
from scipy.signal import fftconvolve, resample_poly
from torch import Tensor

from lstm_seq.settings import at_least, check, from_dict, positive, prob


@dataclass
class AugmentConfig:
    """Every augmentation setting; ``conf/augment/*.yaml`` override some of them. Probabilities are per utterance.

    The pipelines register this class as the Hydra schema of ``conf/augment``; the rules of its fields
    (:mod:`lstm_seq.settings`) are checked when it is built."""

    enabled: bool = True  # False: no augmentation at all (conf/augment/none.yaml)
    speed_p: float = prob(0.8)  # speed perturbation
    speed: tuple[float, float] = (0.88, 1.12)  # factor range (quantised to 0.01)
    vtlp_p: float = prob(0.8)  # mel-filterbank warp in the front end
    vtlp: tuple[float, float] = (0.88, 1.12)  # warp factor α range
    reverb_p: float = prob(0.3)
    rt60_s: tuple[float, float] = (0.15, 0.7)  # reverberation time range
    drr_db: tuple[float, float] = (0.0, 12.0)  # direct-to-reverberant energy ratio range
    eq_p: float = prob(0.7)
    eq_db: float = at_least(0, 8.0)  # largest boost/cut of the random EQ curve
    eq_bands: int = positive(6)  # knots of the EQ curve over log frequency
    tilt_db: float = at_least(0, 3.0)  # largest spectral tilt, dB per octave (relative to 1 kHz)
    bandlimit_p: float = prob(0.3)
    lowpass_hz: tuple[float, float] = (3500.0, 7500.0)
    highpass_hz: tuple[float, float] = (50.0, 350.0)
    telephone_p: float = prob(0.1)  # 300-3400 Hz instead of the random band
    noise_p: float = prob(0.5)
    noise_snr_db: tuple[float, float] = (5.0, 30.0)
    noise_colour: tuple[float, float] = (0.0, 2.0)  # spectral exponent β
    babble_p: float = prob(0.2)
    babble_snr_db: tuple[float, float] = (8.0, 25.0)
    babble_max: int = positive(3)  # other utterances mixed at most
    gain_db: tuple[float, float] = (-12.0, 6.0)

    def __post_init__(self) -> None:
        check(self, "augment.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> AugmentConfig:
        """Build from a plain mapping (lists become tuples); an unknown key raises :class:`ValueError`."""
        return from_dict(cls, d, "augment")


# --------------------------------------------------------------------------------------------------- operations
def speed_perturb(wave: np.ndarray, factor: float) -> np.ndarray:
    """Play ``wave`` (N,) ``factor`` times faster by resampling: (N,) → (≈ N / factor,); pitch × factor.

    ``factor`` is quantised to 0.01 (a rational resampling ratio 100 / (100·factor))."""
    num = round(100 * factor)
    if num == 100:
        return wave
    g = math.gcd(100, num)
    return resample_poly(wave, 100 // g, num // g).astype(np.float32, copy=False)


def room_impulse_response(
    rng: np.random.Generator, sample_rate: int, rt60: float, drr_db: float
) -> np.ndarray:
    """A synthetic RIR (M,): a unit direct path, sparse early reflections over the first 50 ms and a noise tail
    decaying by 60 dB in ``rt60`` seconds, scaled so that direct / (early + tail) energy is ``drr_db``."""
    n = max(2, int(rt60 * sample_rate))
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * 10 ** (-3 * t / rt60)  # -60 dB at rt60
    early = np.zeros(n)
    k = rng.integers(1, int(0.05 * sample_rate), size=8)
    early[k] = rng.uniform(-1, 1, size=k.size) * 10 ** (-3 * t[k] / rt60)
    late = early + tail
    late[0] = 0.0
    late *= 10 ** (-drr_db / 20) / max(float(np.sqrt(np.sum(late**2))), 1e-12)
    late[0] = 1.0
    return late.astype(np.float32)


def reverberate(wave: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with ``rir``, keeping the length of ``wave`` and its direct path aligned."""
    return fftconvolve(wave, rir)[: wave.shape[0]].astype(np.float32, copy=False)


def spectral_shape(
    wave: np.ndarray, sample_rate: int, gain_db: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Filter ``wave`` (N,) with the zero-phase magnitude response ``gain_db(freqs_hz)`` (in dB), by FFT."""
    n = wave.shape[0]
    spec = np.fft.rfft(wave, n)
    freqs = np.fft.rfftfreq(n, 1 / sample_rate)
    return np.fft.irfft(spec * 10 ** (gain_db(freqs) / 20), n).astype(np.float32, copy=False)


def filter_wave(
    wave: np.ndarray,
    sample_rate: int,
    rir: np.ndarray | None,
    curves: list[Callable[[np.ndarray], np.ndarray]],
) -> np.ndarray:
    """Convolve ``wave`` (N,) with ``rir`` (M,) (or nothing) and apply the zero-phase magnitude responses
    ``curves`` (dB over Hz), all in one FFT of length ≥ N + M - 1; returns (N,), the direct path aligned."""
    n = wave.shape[0]
    m = rir.shape[0] if rir is not None else 1
    size = sp_fft.next_fast_len(n + m - 1, real=True)
    spec = sp_fft.rfft(wave, size)
    if rir is not None:
        spec *= sp_fft.rfft(rir, size)
    if curves:
        freqs = np.fft.rfftfreq(size, 1 / sample_rate)
        spec *= 10 ** (sum(c(freqs) for c in curves) / 20)
    return sp_fft.irfft(spec, size)[:n].astype(np.float32, copy=False)


def random_eq(rng: np.random.Generator, cfg: AugmentConfig) -> Callable[[np.ndarray], np.ndarray]:
    """A smooth random EQ curve: ``eq_bands`` random gains at log-spaced knots (60 Hz–8 kHz, interpolated over
    log frequency) plus a tilt of up to ±``tilt_db`` dB per octave around 1 kHz."""
    knots = np.log2(np.geomspace(60.0, 8000.0, cfg.eq_bands))
    gains = rng.uniform(-cfg.eq_db, cfg.eq_db, size=cfg.eq_bands)
    tilt = rng.uniform(-cfg.tilt_db, cfg.tilt_db)

    def curve(freqs: np.ndarray) -> np.ndarray:
        octave = np.log2(np.maximum(freqs, 20.0))
        return np.interp(octave, knots, gains) + tilt * np.clip(octave - np.log2(1000.0), -4, 3)

    return curve


def band_limit(lo_hz: float, hi_hz: float, order: float = 6.0) -> Callable[[np.ndarray], np.ndarray]:
    """A Butterworth-like magnitude response (dB): pass band [lo_hz, hi_hz], ``order`` poles each side."""

    def curve(freqs: np.ndarray) -> np.ndarray:
        f = np.maximum(freqs, 1.0)
        mag = 1 / np.sqrt(1 + (lo_hz / f) ** (2 * order)) / np.sqrt(1 + (f / hi_hz) ** (2 * order))
        return 20 * np.log10(np.maximum(mag, 1e-6))

    return curve


def coloured_noise(rng: np.random.Generator, n: int, beta: float) -> np.ndarray:
    """Unit-RMS noise (n,) with power spectrum ∝ 1/f^beta."""
    white = rng.standard_normal(n).astype(np.float32)
    if beta < 0.05:
        return white
    size = sp_fft.next_fast_len(n, real=True)
    spec = sp_fft.rfft(white, size)
    f = np.arange(spec.shape[0], dtype=np.float32)
    f[0] = 1.0
    noise = sp_fft.irfft(spec / f ** (beta / 2), size)[:n]
    return (noise / max(float(np.sqrt(np.mean(noise**2))), 1e-12)).astype(np.float32)


def mix_at_snr(wave: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``wave + noise`` with the noise scaled to ``snr_db`` below the wave's power (noise tiled/cut to length)."""
    if noise.shape[0] < wave.shape[0]:
        noise = np.tile(noise, math.ceil(wave.shape[0] / max(1, noise.shape[0])))
    noise = noise[: wave.shape[0]]
    p_wave = float(np.mean(wave**2))
    p_noise = float(np.mean(noise**2))
    if p_wave <= 0 or p_noise <= 0:
        return wave
    return (wave + noise * math.sqrt(p_wave / p_noise / 10 ** (snr_db / 10))).astype(np.float32)


# --------------------------------------------------------------------------------------------------- augmenter
class Augmenter:
    """Applies :class:`AugmentConfig` to training waveforms.

    Args:
        cfg: the settings.
        sample_rate: rate of the waveforms.

    Example:
        >>> aug = Augmenter(AugmentConfig(), 16000)
        >>> wave, warp = aug(wave, np.random.default_rng(seed), others=lambda rng: other_wave)
    """

    def __init__(self, cfg: AugmentConfig, sample_rate: int = 16000) -> None:
        self.cfg = cfg
        self.sr = sample_rate

    def __call__(
        self,
        wave: np.ndarray,
        rng: np.random.Generator,
        others: Callable[[np.random.Generator], np.ndarray | None] | None = None,
    ) -> tuple[np.ndarray, float]:
        """Perturb ``wave`` (N,) → (N',) and draw its VTLP warp factor (1.0 = none).

        Args:
            wave: float32 waveform.
            rng: this utterance's generator (seeded by (seed, epoch, index)); every draw comes from it.
            others: returns another training utterance for babble (None: no babble).
        """
        cfg, sr = self.cfg, self.sr
        if not cfg.enabled or wave.size == 0:
            return wave, 1.0
        # one draw per decision, always made, so a change in one step does not shift the others' draws
        u = rng.random(8)
        if u[0] < cfg.speed_p:
            wave = speed_perturb(wave, float(rng.uniform(*cfg.speed)))
        warp = float(rng.uniform(*cfg.vtlp)) if u[1] < cfg.vtlp_p else 1.0
        # reverberation, EQ and band limiting are all linear filters: one FFT pair applies them together
        rir = None
        if u[2] < cfg.reverb_p:
            rt60, drr = float(rng.uniform(*cfg.rt60_s)), float(rng.uniform(*cfg.drr_db))
            rir = room_impulse_response(rng, sr, rt60, drr)
        curves = []
        if u[3] < cfg.eq_p:
            curves.append(random_eq(rng, cfg))
        if u[4] < cfg.bandlimit_p:
            if rng.random() < cfg.telephone_p:
                lo, hi = 300.0, 3400.0
            else:
                lo, hi = float(rng.uniform(*cfg.highpass_hz)), float(rng.uniform(*cfg.lowpass_hz))
            curves.append(band_limit(lo, min(hi, 0.49 * sr)))
        if rir is not None or curves:
            wave = filter_wave(wave, sr, rir, curves)
        if u[5] < cfg.noise_p:
            noise = coloured_noise(rng, wave.shape[0], float(rng.uniform(*cfg.noise_colour)))
            wave = mix_at_snr(wave, noise, float(rng.uniform(*cfg.noise_snr_db)))
        if u[6] < cfg.babble_p and others is not None:
            parts = [others(rng) for _ in range(int(rng.integers(1, cfg.babble_max + 1)))]
            parts = [p for p in parts if p is not None and p.size]
            if parts:
                babble = np.zeros(wave.shape[0], np.float32)
                for p in parts:
                    start = int(rng.integers(0, max(1, p.shape[0] - wave.shape[0] + 1)))
                    seg = np.resize(p[start:], wave.shape[0])  # repeats a short one
                    babble += seg / max(float(np.sqrt(np.mean(seg**2))), 1e-6)
                wave = mix_at_snr(wave, babble, float(rng.uniform(*cfg.babble_snr_db)))
        wave = wave * 10 ** (float(rng.uniform(*cfg.gain_db)) / 20)
        return np.clip(wave, -1.0, 1.0).astype(np.float32, copy=False), warp


def warp_filterbanks(fbanks: Tensor, warp: Tensor, boundary: float = 0.8) -> Tensor:
    """Per-utterance VTLP filterbanks: the filter applied at FFT bin k is the original one's response at the
    warped bin w(k), with w piecewise linear (w(k) = α·k up to a boundary, then straight to the Nyquist bin, so
    the band edges stay fixed).

    Args:
        fbanks: (K, M) mel filterbank over K = n_fft/2 + 1 bins.
        warp: (B,) warp factors α (1.0 = the original filterbank).
        boundary: share of the band below which the warp is a pure scaling.
    Returns:
        (B, K, M) filterbanks.
    """
    k_bins = fbanks.shape[0]
    nyq = float(k_bins - 1)
    k = torch.arange(k_bins, device=fbanks.device, dtype=fbanks.dtype)[None, :]  # (1, K)
    alpha = warp.to(fbanks.dtype)[:, None]  # (B, 1)
    b = boundary * nyq * torch.clamp(1 / alpha, max=1.0)  # (B, 1): where the scaling ends
    above = alpha * b + (nyq - alpha * b) * (k - b) / (nyq - b)
    pos = torch.where(k <= b, alpha * k, above).clamp(0, nyq)  # (B, K) fractional source bins
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=k_bins - 1)
    frac = (pos - lo.to(pos.dtype))[..., None]  # (B, K, 1)
    return fbanks[lo] * (1 - frac) + fbanks[hi] * frac
