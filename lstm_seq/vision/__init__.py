"""Image captioning: CNN grid features → attention + :class:`lstm_seq.LSTM` decoder → batched beam search → text.

Where things are (the same shape as :mod:`lstm_seq.audio`):

- ``data/``: caption file formats (``formats``: COCO, Flickr, Karpathy), image loading (``images``), the embedded
  scene corpus (``synth``) and which corpus a run uses (``corpus``), caption-preserving augmentation, datasets.
- ``vocab.py``: the word vocabulary.
- ``encoder.py``: the CNN encoder (the features); ``feature_cache.py``: a frozen encoder's features stored on disk.
- ``decoder.py``: show-and-tell and attention decoders; ``module.py``: the LightningModule (loss, BLEU/CIDEr-D,
  checkpoint loading with :meth:`~lstm_seq.vision.module.CaptionModule.load`).
- ``decoding/``: greedy and batched beam search (``beam``).
- ``recipe.py``: the runs (train, test, generate) that ``python -m pipelines.caption`` calls; ``generate.py``: a
  folder of images → ``captions.jsonl``; ``gallery.py``: the ``captions.html`` gallery.
- ``export.py``: the encoder and one decoder step as ONNX + metadata.
"""

__all__ = ["Caption", "Captioner"]


def __getattr__(name: str) -> object:
    """``from lstm_seq.vision import Captioner`` without importing the model stack for every submodule."""
    if name in __all__:
        from lstm_seq.vision import captioner

        return getattr(captioner, name)
    raise AttributeError(f"module 'lstm_seq.vision' has no attribute {name!r}")
