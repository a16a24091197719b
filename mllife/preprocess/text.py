"""Free text as model inputs: TF-IDF over word 1-2-grams and character 2-5-grams of the
normalised text (:mod:`mllife.data.text_normal`, applied inside the model, so training and
serving read a text alike), with a vocabulary sized by the data.

The vectoriser's state is plain data (vocabularies and idf weights), so torch artifacts
keep loading with ``weights_only=True``; the fitted scikit-learn objects are rebuilt once
per loaded model, not per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["TextFeatures", "TextVectorizer"]

#: below this many training texts every n-gram is kept; above, those seen once are not
#: (they cannot generalise and make most of the vocabulary)
MIN_DF_FROM = 1000
#: the most cells a text table's features may have made dense (400 MB of float32), for
#: models that take no sparse input
DENSE_LIMIT = 100_000_000


@dataclass(frozen=True)
class TextFeatures:
    """A table with free text, as models receive it: ``matrix`` (sparse, every column's
    features, TF-IDF included) and ``texts`` (the text column named ``text_column``,
    normalised: what a sentence encoder reads)."""

    matrix: Any  # scipy.sparse.csr_matrix
    texts: list[str]
    text_column: str

    def __len__(self) -> int:
        return self.matrix.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def dense(self, *, model: str, limit: int = DENSE_LIMIT) -> np.ndarray:
        """The matrix as a float32 array, for a model that takes no sparse input; a
        :class:`DataError` when that would be more than ``limit`` cells."""
        rows, columns = self.matrix.shape
        if rows * columns > limit:
            from mllife._errors import DataError

            raise DataError(
                f"{model} needs dense input, and the text column {self.text_column!r} makes"
                f" {rows:,} x {columns:,} features (over {limit:,} cells): use an estimator"
                " that takes sparse input (sklearn.linear_model.LogisticRegression), or a"
                " candidate of kind 'text_encoder'"
            )
        return self.matrix.toarray()

    def take(self, index) -> TextFeatures:
        index = np.asarray(index)
        return TextFeatures(self.matrix[index], [self.texts[i] for i in index], self.text_column)


def _analyzers(min_df: int):
    from sklearn.feature_extraction.text import TfidfVectorizer

    common = {"sublinear_tf": True, "min_df": min_df, "dtype": np.float32,
              "preprocessor": _lowered}  # fmt: skip
    return (
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), **common),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), **common),
    )


def _lowered(text: str) -> str:
    return text.lower()


class TextVectorizer:
    """Word and character n-gram TF-IDF, its two halves weighted equally."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        self.state = state
        self._fitted = None

    @staticmethod
    def fit(texts: list[str]) -> TextVectorizer:
        min_df = 2 if len(texts) >= MIN_DF_FROM else 1
        word, char = _analyzers(min_df)
        word.fit(texts)
        char.fit(texts)
        state = {
            "kind": "text",
            "min_df": min_df,
            "word": {k: int(v) for k, v in word.vocabulary_.items()},
            "word_idf": word.idf_.astype(float).tolist(),
            "char": {k: int(v) for k, v in char.vocabulary_.items()},
            "char_idf": char.idf_.astype(float).tolist(),
        }
        vectorizer = TextVectorizer(state)
        vectorizer._fitted = (word, char)
        return vectorizer

    @property
    def width(self) -> int:
        return len(self.state["word"]) + len(self.state["char"])

    def _halves(self):
        if self._fitted is None:
            word, char = _analyzers(1)
            word.vocabulary_ = self.state["word"]
            word.idf_ = np.asarray(self.state["word_idf"])
            char.vocabulary_ = self.state["char"]
            char.idf_ = np.asarray(self.state["char_idf"])
            self._fitted = (word, char)
        return self._fitted

    def transform(self, texts: list[str]):
        """(N, width) CSR float32: word then character features, each row L2-normalised
        within its half and scaled by 1/sqrt(2), so the whole row has norm 1."""
        import scipy.sparse as sp

        word, char = self._halves()
        both = sp.hstack([word.transform(texts), char.transform(texts)], format="csr")
        both.data *= np.float32(np.sqrt(0.5))
        return both

    def feature_names(self) -> list[str]:
        words = sorted(self.state["word"], key=self.state["word"].get)
        chars = sorted(self.state["char"], key=self.state["char"].get)
        return words + [f"chars {c!r}" for c in chars]
