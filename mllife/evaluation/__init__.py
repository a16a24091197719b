"""Evaluation: a trained candidate evaluated on the validation and sealed test splits
(every test read recorded), and its single-prediction latency."""
