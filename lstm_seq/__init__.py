"""lstm_seq: LSTM sequence models for speech and vision, built on one shared, fast LSTM module."""

from lstm_seq.lstm import LSTM

__all__ = ["LSTM"]
__version__ = "0.1.0"
