"""CTC decoding: greedy, and beam search with a lexicon and a word n-gram LM; the LM itself; weight tuning."""
