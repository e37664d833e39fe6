"""Speech recognition: audio → MFCC → conv subsampling → :class:`lstm_seq.LSTM` → CTC → text.

Where things are (the same shape as :mod:`lstm_seq.vision`):

- ``data/``: reading audio (``io``), manifests and importers of LibriSpeech/Common Voice/LJSpeech, the embedded
  eSpeak NG corpus (``grammar``, ``espeak``, ``synth``), waveform augmentation (``augment``), datasets,
  duration buckets and the Lightning data module.
- ``vocab.py``: the character vocabulary and transcript normalisation.
- ``features.py``: MFCC (+ CMVN: per utterance, or global statistics of the training set) and SpecAugment.
- ``model.py``: the acoustic model; ``module.py``: the LightningModule (the CTC loss, WER/CER evaluation,
  checkpoint loading with :meth:`~lstm_seq.audio.module.ASRModule.load`).
- ``decoding/``: the word n-gram LM built from transcripts (``lm``) and read from ARPA (``ngram``), the lexicon
  trie, the CTC beam search, greedy/beam decoders (``decode``) and the LM-weight tuning (``tune``).
- ``recipe.py``: the runs (prepare, train, test, transcribe) that ``python -m pipelines.asr`` calls;
  ``transcribe.py``: a folder of audio files → ``transcripts.jsonl``; ``plots.py``: pictures after training.
- ``export.py``: the acoustic model as ONNX (waveform or features → log-probs) + metadata; ``streaming.py``:
  chunk-by-chunk greedy recognition with a unidirectional model (equal to the whole clip).
"""

__all__ = ["Recognizer", "StreamingSession", "Transcript"]


def __getattr__(name: str) -> object:
    """``from lstm_seq.audio import Recognizer`` without importing the model stack for every submodule."""
    if name in ("Recognizer", "Transcript"):
        from lstm_seq.audio import recognizer

        return getattr(recognizer, name)
    if name == "StreamingSession":
        from lstm_seq.audio.streaming import StreamingSession

        return StreamingSession
    raise AttributeError(f"module 'lstm_seq.audio' has no attribute {name!r}")
