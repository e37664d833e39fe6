"""Image captioning: synthetic scenes and dataset readers, CNN encoder, lstm_seq.LSTM decoders, beam search."""
