"""Pictures of a few utterances after training: MFCCs, CTC posteriors over time, decoded vs
reference text (one PNG per utterance)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from lstm_seq.audio.data.io import load_audio
from lstm_seq.audio.decoding.decode import greedy_decode
from lstm_seq.audio.module import ASRModule


@torch.no_grad()
def plot_utterances(
    module: ASRModule, items: list[dict[str, str]], out_dir: str | os.PathLike[str]
) -> list[Path]:
    """Write ``utt_<k>.png`` for each ``{"path", "ref"}`` item; returns the files written.

    Top: the MFCCs (F × T). Bottom: the posterior of every output symbol over time (V × T'),
    blank on the first row. Title: reference and greedy hypothesis.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    device = next(module.parameters()).device
    sr = module.feature_cfg.sample_rate
    written = []
    for k, item in enumerate(items):
        wave = torch.from_numpy(load_audio(item["path"], sr))[None].to(device)
        lengths = torch.tensor([wave.shape[1]], device=device)
        feats, frames = module.featurizer(wave, lengths)
        log_probs, out_len = module(wave, lengths)
        hyp = greedy_decode(log_probs, out_len, module.vocab)[0]
        post = log_probs[0, : int(out_len[0])].exp().cpu().numpy().T  # (V, T')
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6), constrained_layout=True)
        ax1.imshow(feats[0, : int(frames[0])].cpu().numpy().T, aspect="auto", origin="lower", cmap="magma")
        ax1.set_ylabel("MFCC (+Δ, ΔΔ)")
        ax1.set_xlabel("frame (10 ms)")
        ax2.imshow(
            post, aspect="auto", origin="upper", cmap="viridis", vmin=0, vmax=1, interpolation="nearest"
        )
        labels = [
            "∅" if i == module.vocab.blank else ("␣" if t == " " else t)
            for i, t in enumerate(module.vocab.tokens)
        ]
        ax2.set_yticks(np.arange(len(labels)), labels, fontsize=6)
        ax2.set_xlabel(f"output step ({module.model_cfg.subsample * 10} ms)")
        ax2.set_ylabel("CTC posterior")
        fig.suptitle(f"ref: {item.get('ref', '')}\nhyp: {hyp}", fontsize=10, family="monospace")
        path = out / f"utt_{k:02d}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)
    return written
