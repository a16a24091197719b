"""Behaviour tests for text models, after CheckList (Ribeiro et al., 2020), written in a
problem's ``problem.toml`` beside plain patterns and expanded into patterns when the
file is read:

- ``[[templates]]``: minimum-functionality cases. ``text = "the {thing} is not {bad}"``
  with ``fill = { thing = [...], bad = [...] }`` and the ``expected`` label makes one
  pattern per combination (at most :data:`MAX_PER_TEMPLATE`).
- ``[[invariance]]``: a ``text`` with its ``expected`` label and ``perturb`` (any of
  ``names``, ``places``, ``typos``): the text and each perturbed copy are patterns with
  that label, so a model that changes its answer under a perturbation fails the copy.
- ``[[directional]]``: a ``text`` with its ``expected`` label, and ``append`` (a phrase
  added at the end) that ``must_not_raise`` the score of a class: the perturbed text's
  probability of that class may not exceed the original's (:data:`DIRECTIONAL` patterns,
  scored against the original's probabilities).

The expansion is deterministic (typos are seeded by the text), so a problem file always
yields the same patterns and every model version is scored on the same ones.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from typing import Any

from mllife._errors import ProblemError

__all__ = ["DIRECTIONAL", "directional_target", "expand_behaviour"]

MAX_PER_TEMPLATE = 50
#: ``expected`` of a directional pattern: "<= CLASS @ ORIGINAL_PATTERN_HASH"
DIRECTIONAL = "<= "
PERTURBATIONS = ("names", "places", "typos")
NAMES = ("John", "Mary", "Ahmed", "Mei", "Carlos", "Priya", "Olga", "Kwame")
PLACES = ("London", "Lagos", "Lima", "Osaka", "Chicago", "Mumbai", "Oslo", "Cairo")


def directional_target(expected: str) -> tuple[str, str] | None:
    """(class, original pattern hash) of a directional pattern's ``expected``, else None."""
    if not expected.startswith(DIRECTIONAL):
        return None
    label, _, original = expected.removeprefix(DIRECTIONAL).rpartition(" @ ")
    return label, original


def _swap(text: str, pool: tuple[str, ...]) -> list[str]:
    """``text`` with every name of ``pool`` in it replaced by each other name in turn."""
    found = [n for n in pool if re.search(rf"\b{re.escape(n)}\b", text, flags=re.IGNORECASE)]
    out = []
    for name in found:
        for other in pool:
            if other.lower() != name.lower():
                pattern = re.compile(rf"\b{re.escape(name)}\b", flags=re.IGNORECASE)
                out.append(pattern.sub(other, text))
    return out[:6]


def _typos(text: str) -> list[str]:
    """Three copies of ``text``, each with two neighbouring letters of one word swapped."""
    seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
    rng = random.Random(seed)
    words = [m for m in re.finditer(r"[A-Za-z]{4,}", text)]
    out = []
    for _ in range(3 if words else 0):
        word = rng.choice(words)
        i = rng.randrange(word.start(), word.end() - 1)
        out.append(text[:i] + text[i + 1] + text[i] + text[i + 2 :])
    return list(dict.fromkeys(out))


def _perturbed(text: str, kinds: list[str], where: str) -> list[str]:
    unknown = sorted(set(kinds) - set(PERTURBATIONS))
    if unknown:
        raise ProblemError(f"{where}: perturb {unknown} unknown; choose from {PERTURBATIONS}")
    out = []
    for kind in kinds:
        made = (
            _swap(text, NAMES)
            if kind == "names"
            else _swap(text, PLACES)
            if kind == "places"
            else _typos(text)
        )
        if not made:
            raise ProblemError(
                f"{where}: perturbation {kind!r} changes nothing in {text!r}"
                + (
                    f" (it swaps the names {list(NAMES if kind == 'names' else PLACES)})"
                    if kind != "typos"
                    else ""
                )  # fmt: skip
            )
        out += made
    return out


def _text(item: dict, where: str) -> str:
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ProblemError(f"{where}: needs 'text', a non-empty string")
    return text


def expand_behaviour(spec: dict[str, Any], *, column: str, where: str) -> list[dict]:
    """Pattern tables (``row``, ``expected``, ``kind``, ``source``; directional ones with
    ``original``: the row they are compared with) made from ``spec``'s behaviour tests;
    ``column``: the project's text column."""
    out = []
    for number, item in enumerate(spec.get("templates", []), start=1):
        here = f"{where}, templates {number}"
        template, fill = _text(item, here), item.get("fill", {})
        names = re.findall(r"{(\w+)}", template)
        if missing := sorted(set(names) - set(fill)):
            raise ProblemError(f"{here}: 'fill' lacks {missing} for {template!r}")
        combos = itertools.product(*(fill[n] for n in dict.fromkeys(names)))
        for values in itertools.islice(combos, MAX_PER_TEMPLATE):
            text = template.format(**dict(zip(dict.fromkeys(names), values, strict=True)))
            out.append(_case(column, text, item, here))
    for number, item in enumerate(spec.get("invariance", []), start=1):
        here = f"{where}, invariance {number}"
        text = _text(item, here)
        for variant in [text, *_perturbed(text, list(item.get("perturb", [])), here)]:
            out.append(_case(column, variant, item, here))
    for number, item in enumerate(spec.get("directional", []), start=1):
        here = f"{where}, directional {number}"
        text, added, label = _text(item, here), item.get("append"), item.get("must_not_raise")
        if not isinstance(added, str) or not isinstance(label, str):
            raise ProblemError(f"{here}: needs 'append' (a phrase) and 'must_not_raise' (a class)")
        original = _case(column, text, item, here)
        out += [original, {**_case(column, text + added, item, here), "original": original,
                           "must_not_raise": label}]  # fmt: skip
    return out


def _case(column: str, text: str, item: dict, where: str) -> dict:
    if "expected" not in item:
        raise ProblemError(f"{where}: needs 'expected', the label of the text")
    return {
        "row": {column: text},
        "expected": str(item["expected"]),
        "kind": item.get("kind", "positive"),
        "source": item.get("source", "contrived"),
    }
