"""Evaluation metrics: WER/CER for speech (``wer.py``), BLEU/CIDEr for captions (``caption.py``)."""
