"""Speech recognition: MFCC → conv subsampling → lstm_seq.LSTM → CTC, with greedy and beam + n-gram LM decoding.

One entry point per task, each with its own primary config (every run writes into its own folder under
outputs/, including metrics.json):

    python -m pipelines.asr                                   # synthetic corpus (built once), train, test
    python -m pipelines.asr debug=smoke                       # the whole pipeline on tiny data, < 1 min on CPU
    python -m pipelines.asr trainer.accelerator=gpu           # GPU, bf16 mixed precision
    python -m pipelines.asr ckpt=outputs/…/checkpoints/last.ckpt          # resume training (exact, from any kill)
    python -m pipelines.asr trainer=ddp trainer.devices=4                 # DDP: 4 processes (gloo on CPU)
    python -m pipelines.asr.test ckpt=PATH                                # evaluate on the configured test set
    python -m pipelines.asr.transcribe ckpt=PATH audio_dir=DIR            # → transcripts.jsonl
    python -m pipelines.asr.export ckpt=PATH                              # → export/*.onnx + metadata.json
    python -m pipelines.asr.prepare data=librispeech data.root=/data/LibriSpeech   # also ljspeech, commonvoice
    python -m pipelines.asr data=librispeech                              # train on the prepared manifests
    python -m pipelines.asr data=speech_manifest data.train_manifest=train.jsonl \\
        data.val_manifest=val.jsonl data.test_manifest=test.jsonl        # your own manifests
    python -m pipelines.asr model=asr_unilstm decode=greedy               # unidirectional model, greedy decoding
    python -m pipelines.asr augment=strong                                # stronger waveform augmentation (or none)

Configs: conf/asr.yaml (train), conf/asr_test.yaml, conf/asr_transcribe.yaml, conf/asr_export.yaml,
conf/asr_prepare.yaml; each holds only the keys and groups its task uses.
"""
