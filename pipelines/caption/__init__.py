"""Image captioning: CNN features → lstm_seq.LSTM decoder.

One entry point per task, each with its own primary config (outputs go to a fresh run directory under outputs/):

    python -m pipelines.caption                                   # embedded scenes: build/reuse, train, test
    python -m pipelines.caption decoder=show_tell                 # the show-and-tell baseline
    python -m pipelines.caption debug=smoke                       # whole pipeline on tiny data (< 1 min, CPU)
    python -m pipelines.caption ckpt=outputs/…/checkpoints/last.ckpt       # resume training (exact, from any kill)
    python -m pipelines.caption trainer=ddp trainer.devices=2     # DDP: 2 processes (gloo on CPU)
    python -m pipelines.caption.test ckpt=outputs/…/checkpoints/best.ckpt
    python -m pipelines.caption.generate ckpt=PATH image_dir=DIR  # captions.jsonl + captions.html
    python -m pipelines.caption.export ckpt=PATH                  # export/*.onnx + metadata.json
    python -m pipelines.caption data=karpathy data.json_file=… data.image_dir=… encoder=resnet50 \\
        encoder.weights=IMAGENET1K_V2 encoder.frozen=true trainer=gpu
    python -m pipelines.caption data=coco | data=flickr …         # see conf/data/*.yaml

Each training run writes metrics.json ({"test/bleu4": …, "test/cider": …}), checkpoints/, csv/ and tensorboard/
logs, predictions.jsonl (test) and summary.md. Configs: conf/caption.yaml (train), conf/caption_test.yaml,
conf/caption_generate.yaml, conf/caption_export.yaml.
"""
