"""What a text is once markup and spacing are set aside: the one normalisation that
cleaning, training, serving, drift and the report share.

HTML tags become a space, HTML entities (``&amp;``, ``&#39;``) their characters, and runs
of whitespace one space. Markup is not language: a served review with ``<br />`` in it is
read as the training reviews were.
"""

from __future__ import annotations

import html
import re
from typing import Any

__all__ = ["has_markup", "normalized_key", "normalized_text"]

_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][^<>]{0,200}>")
_ENTITY = re.compile(r"&(#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{2,31});")
_SPACE = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)


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
