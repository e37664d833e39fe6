"""GPU kernels that :mod:`lstm_seq.lstm` dispatches to; nothing else imports them."""
