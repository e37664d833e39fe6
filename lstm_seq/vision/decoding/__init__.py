"""Caption decoding: greedy and batched beam search over a decoder's ``step``."""
