"""Serving speed: the exported ONNX graphs in onnxruntime against the same models in PyTorch, and streaming.

Models with random weights at the default recipes' sizes (the work does not depend on training), or a
trained checkpoint with ``--asr-ckpt``:

- ``asr``: waveform → log-probs (``acoustic_waveform.onnx``, MFCC in the graph) against ``ASRModule.forward``,
  the bidirectional default (``model=asr_bilstm``); latency of one ``--seconds`` clip (batch 1) and
  throughput of batch 16 (clips of 0.6–1 × ``--seconds``, padded), in seconds of audio per second;
- ``caption``: the encoder on batch 1 and 16 scene-sized images, and the decoder step (batch 1, and 16·3 rows:
  a beam of 3 over 16 images), ``caption_encoder.onnx`` / ``caption_decoder_step.onnx`` against the module;
- ``streaming``: :class:`~lstm_seq.audio.streaming.StreamingSession` of the unidirectional model
  (``model=asr_unilstm``, global CMVN) fed a clip in chunks of each ``--chunks-ms``: mean and 95th-percentile
  time per ``push``, and the real-time factor (compute time / audio time).

Before timing, every ONNX output is compared with PyTorch (``max_abs_diff`` in the JSON). Prints a table and
writes ``benchmarks/results/<date>-<device>-export-latency.json``.

    OMP_NUM_THREADS=1 python -m benchmarks.export_latency                  # 1 thread, CPU
    python -m benchmarks.export_latency --threads 2                        # torch and onnxruntime on 2 threads
    python -m benchmarks.export_latency --device cuda                      # CUDA: torch and ORT's CUDA provider
    python -m benchmarks.export_latency --quick                            # a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.lstm_speed import device_name, write_result
from lstm_seq.audio.export import export_acoustic_model
from lstm_seq.audio.features import fit_global_cmvn
from lstm_seq.audio.module import ASRModule
from lstm_seq.audio.streaming import StreamingSession
from lstm_seq.vision.data.images import ImageTransform
from lstm_seq.vision.export import export_captioner
from lstm_seq.vision.module import CaptionModule
from lstm_seq.vision.vocab import Vocabulary

SR = 16000
ASR_MODEL = {"subsample": 4, "conv_channels": 16, "hidden_size": 128, "num_layers": 2, "bidirectional": True}
UNI_MODEL = {**ASR_MODEL, "hidden_size": 192, "bidirectional": False}  # conf/model/asr_unilstm.yaml
FEATURES = {"n_mfcc": 13}  # conf/features/mfcc.yaml


def speech(seconds: float, seed: int) -> np.ndarray:
    """A voiced-speech-like clip: harmonics of a gliding pitch under a syllable envelope, a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(120 + 30 * np.sin(2 * np.pi * 0.7 * t)) / SR
    env = 0.5 * (1 - np.cos(2 * np.pi * 3 * t)) + 0.05
    voiced = sum(np.sin(k * phase) / k for k in range(1, 15))
    return (0.1 * voiced * env + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


def timed(fn: Callable[[], Any], reps: int, sync: Callable[[], None]) -> float:
    """Median milliseconds of ``fn`` over ``reps`` calls after two warm-up calls."""
    for _ in range(2):
        fn()
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def session(path: Path, device: str, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    providers = (
        ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
    )
    return ort.InferenceSession(str(path), opts, providers=providers)


def asr_cases(
    args: argparse.Namespace, dev: torch.device, work: Path, sync: Callable[[], None]
) -> list[dict]:
    if args.asr_ckpt:
        m = ASRModule.load(args.asr_ckpt)
    else:
        torch.manual_seed(0)
        m = ASRModule(features=FEATURES, model=ASR_MODEL)
    m = m.eval()
    files = export_acoustic_model(m, work / "asr", torch_export=False)
    sess = session(files.onnx["waveform"], args.device, args.threads)
    m = m.to(dev)
    cases = []
    for batch in (1, 16):
        waves = [
            speech(args.seconds * (1 if batch == 1 else 0.6 + 0.4 * i / 15), seed=i) for i in range(batch)
        ]
        lengths = torch.tensor([len(w) for w in waves])
        wave = torch.zeros(batch, int(lengths.max()))
        for i, w in enumerate(waves):
            wave[i, : len(w)] = torch.from_numpy(w)
        feed = {"waveform": wave.numpy(), "wave_lengths": lengths.numpy()}
        wave_d, len_d = wave.to(dev), lengths.to(dev)
        with torch.inference_mode():
            ref, _ = m(wave_d, len_d)
        lp, ol = sess.run(None, feed)
        diff = max(float(np.abs(lp[i, :n] - ref[i, :n].cpu().numpy()).max()) for i, n in enumerate(ol))

        def run_torch(w: torch.Tensor = wave_d, n: torch.Tensor = len_d) -> None:
            with torch.inference_mode():
                m(w, n)

        t_ms = timed(run_torch, args.reps, sync)
        o_ms = timed(lambda f=feed: sess.run(None, f), args.reps, sync)
        audio_s = float(lengths.sum()) / SR
        cases.append({
            "name": f"asr-waveform-B{batch}", "batch": batch, "audio_s": audio_s, "torch_ms": t_ms, "onnx_ms": o_ms,
            "speedup": t_ms / o_ms, "torch_audio_s_per_s": audio_s / (t_ms / 1e3),
            "onnx_audio_s_per_s": audio_s / (o_ms / 1e3), "max_abs_diff": diff,
        })  # fmt: skip
    return cases


def caption_cases(
    args: argparse.Namespace, dev: torch.device, work: Path, sync: Callable[[], None]
) -> list[dict]:
    torch.manual_seed(0)
    vocab = Vocabulary([f"w{i}" for i in range(40)])
    encoder = {"name": "resnet18", "output_stride": 8, "hue_pool": True, "colour_channels": 32}
    decoder = {"variant": "attention", "embed_dim": 128, "hidden_size": 256, "attention_dim": 128}
    m = CaptionModule(vocab.to_dict(), ImageTransform(size=64).to_dict(), encoder, decoder).eval()
    files = export_captioner(m, work / "caption")
    enc = session(files.onnx["encoder"], args.device, args.threads)
    step = session(files.onnx["decoder_step"], args.device, args.threads)
    m = m.to(dev)
    cases = []
    for batch, rows in ((1, 1), (16, 48)):
        images = torch.randn(batch, 3, 64, 64)
        outs = enc.run(None, {"images": images.numpy()})
        img_d = images.to(dev)
        with torch.inference_mode():
            grid, pooled = m.encoder(img_d)
            memory = m.decoder.prepare(grid, pooled)
            h, c = m.decoder.init_state(memory)
        diff = float(np.abs(outs[0] - grid.cpu().numpy()).max())

        def run_enc(x: torch.Tensor = img_d) -> None:
            with torch.inference_mode():
                g, p = m.encoder(x)
                m.decoder.init_state(m.decoder.prepare(g, p))

        t_ms = timed(run_enc, args.reps, sync)
        img_np = images.numpy()
        o_ms = timed(lambda x=img_np: enc.run(None, {"images": x}), args.reps, sync)
        cases.append({"name": f"caption-encoder-B{batch}", "batch": batch, "torch_ms": t_ms, "onnx_ms": o_ms,
                      "speedup": t_ms / o_ms, "max_abs_diff": diff})  # fmt: skip
        # the decoder step on `rows` rows (a beam of 3 over 16 images for the batch of 16)
        k = rows // batch
        rep = {n: t.repeat_interleave(k, 0) for n, t in memory.items()}
        hk, ck = h.repeat_interleave(k, 1), c.repeat_interleave(k, 1)
        tokens = torch.full((rows,), vocab.start_id, dtype=torch.long, device=dev)
        feed = {"tokens": tokens.cpu().numpy(), "h": hk.cpu().numpy(), "c": ck.cpu().numpy(),
                "grid": rep["grid"].cpu().numpy(), "keys": rep["keys"].cpu().numpy()}  # fmt: skip
        res = step.run(None, feed)
        with torch.inference_mode():
            logits, _, _ = m.decoder.step(tokens, (hk, ck), rep)
        diff = float(np.abs(res[0] - logits.cpu().numpy()).max())

        def run_step(t: torch.Tensor = tokens, s: tuple = (hk, ck), mem: dict = rep) -> None:
            with torch.inference_mode():
                m.decoder.step(t, s, mem)

        t_ms = timed(run_step, args.reps * 4, sync)
        o_ms = timed(lambda f=feed: step.run(None, f), args.reps * 4, sync)
        cases.append({"name": f"caption-step-R{rows}", "batch": rows, "torch_ms": t_ms, "onnx_ms": o_ms,
                      "speedup": t_ms / o_ms, "max_abs_diff": diff})  # fmt: skip
    return cases


def streaming_cases(args: argparse.Namespace, dev: torch.device, sync: Callable[[], None]) -> list[dict]:
    torch.manual_seed(0)
    m = ASRModule(features={**FEATURES, "cmvn": "global"}, model=UNI_MODEL).eval()
    fit_global_cmvn(m.featurizer, [speech(1.0, seed=s) for s in range(8)])
    m = m.to(dev)
    wave = np.concatenate([speech(2.0, seed=s) for s in range(int(np.ceil(args.stream_seconds / 2)))])
    wave = wave[: int(args.stream_seconds * SR)]
    with torch.inference_mode():
        ref, _ = m(torch.from_numpy(wave)[None].to(dev), torch.tensor([len(wave)], device=dev))
    cases = []
    for chunk_ms in args.chunks_ms:
        chunk = int(SR * chunk_ms / 1000)
        per_push = []
        s = StreamingSession(m)
        t_start = time.perf_counter()
        for i in range(0, len(wave), chunk):
            t0 = time.perf_counter()
            s.push(wave[i : i + chunk])
            sync()
            per_push.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        s.finish()
        sync()
        finish_ms = (time.perf_counter() - t0) * 1e3
        total = time.perf_counter() - t_start
        diff = float((s.log_probs - ref[0]).abs().max())
        cases.append({
            "name": f"stream-{chunk_ms}ms", "chunk_ms": chunk_ms, "chunks": len(per_push),
            "mean_ms": statistics.mean(per_push), "p95_ms": float(np.percentile(per_push, 95)),
            "finish_ms": finish_ms, "rtf": total / (len(wave) / SR), "max_abs_diff": diff,
        })  # fmt: skip
    return cases


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=1, help="torch and onnxruntime intra-op threads")
    p.add_argument("--seconds", type=float, default=2.5, help="clip length of the batch-1 case")
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--chunks-ms", type=int, nargs="+", default=[100, 200, 500])
    p.add_argument("--stream-seconds", type=float, default=10.0)
    p.add_argument("--asr-ckpt", default=None, help="a trained ASR checkpoint (default: random weights)")
    p.add_argument("--quick", action="store_true", help="few repetitions, short stream")
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args()
    if args.quick:
        args.reps, args.stream_seconds, args.chunks_ms = 3, 3.0, [200]
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    import onnxruntime

    with tempfile.TemporaryDirectory() as tmp:
        cases = asr_cases(args, dev, Path(tmp), sync) + caption_cases(args, dev, Path(tmp), sync)
    stream = streaming_cases(args, dev, sync)
    print(f"\n{'case':<22}{'batch':>6}{'torch ms':>10}{'onnx ms':>10}{'speedup':>9}{'max diff':>10}")
    for c in cases:
        print(f"{c['name']:<22}{c['batch']:>6}{c['torch_ms']:>10.2f}{c['onnx_ms']:>10.2f}{c['speedup']:>9.2f}"
              f"{c['max_abs_diff']:>10.1e}")  # fmt: skip
    for c in cases:
        if "onnx_audio_s_per_s" in c:
            print(f"{c['name']}: {c['torch_audio_s_per_s']:.0f} (torch) / {c['onnx_audio_s_per_s']:.0f} (onnx) "
                  "s of audio per s")  # fmt: skip
    print(
        f"\n{'streaming':<16}{'chunks':>7}{'mean ms':>9}{'p95 ms':>8}{'finish':>8}{'RTF':>7}{'max diff':>10}"
    )
    for c in stream:
        print(f"{c['name']:<16}{c['chunks']:>7}{c['mean_ms']:>9.2f}{c['p95_ms']:>8.2f}{c['finish_ms']:>8.2f}"
              f"{c['rtf']:>7.3f}{c['max_abs_diff']:>10.1e}")  # fmt: skip
    write_result(
        Path(args.out), device_name(dev), "-export-latency", threads=args.threads,
        onnxruntime=onnxruntime.__version__, asr_ckpt=args.asr_ckpt, cases=cases, streaming=stream,
    )  # fmt: skip


if __name__ == "__main__":
    main()
