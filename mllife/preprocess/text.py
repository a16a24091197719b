"""Free text as model inputs: one normalisation for training, evaluation and serving,
and TF-IDF over word 1-2-grams and character 2-5-grams with a vocabulary sized by the data.

The normalisation removes what is markup, not language: HTML tags become a space, HTML
entities (``&amp;``, ``&#39;``) their characters, and runs of whitespace one space. It is
applied inside the model (TF-IDF and the sentence encoder alike), so a served review with
``<br />`` in it is read as the training reviews were.

The vectoriser's state is plain data (vocabularies and idf weights), so torch artifacts
keep loading with ``weights_only=True``; the fitted scikit-learn objects are rebuilt once
per loaded model, not per request.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "TextFeatures",
    "TextVectorizer",
    "has_markup",
    "normalized_key",
    "normalized_text",
]

_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][^<>]{0,200}>")
_ENTITY = re.compile(r"&(#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{2,31});")
_SPACE = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)

#: below this many training texts every n-gram is kept; above, those seen once are not
#: (they cannot generalise and make most of the vocabulary)
MIN_DF_FROM = 1000


def has_markup(text: str) -> bool:
    """Whether ``text`` holds an HTML tag or entity (what :func:`normalized_text` removes)."""
    return bool(_TAG.search(text) or _ENTITY.search(text))


def normalized_text(text: Any) -> str:
    """``text`` without HTML tags and entities, whitespace collapsed (None: "")."""
    if text is None:
        return ""
    text = str(text)
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    return _SPACE.sub(" ", text).strip()


def normalized_key(text: Any) -> str:
    """What two texts must share to be "the same review": normalised, case-folded,
    punctuation removed (a normalised duplicate differs only in these)."""
    folded = _PUNCTUATION.sub(" ", normalized_text(text).casefold())
    return _SPACE.sub(" ", folded).strip()


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
