"""How worn the sealed test set is: each run reads it for its chosen challenger (and
the champion's predictions for the paired comparison), ``mllife status --show-test`` for
the other candidates; every read is recorded in ``test_reads``, and each read that
informs a decision spends some of its independence. Past ``[promotion] max_test_reads``
reads of one split version, the report and ``mllife status`` say that the test set is
worn out and what to do."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SealedSetWear", "sealed_set_wear"]


@dataclass(frozen=True)
class SealedSetWear:
    split_version: str
    reads: int
    budget: int | None

    @property
    def worn(self) -> bool:
        return self.budget is not None and self.reads > self.budget

    def describe(self) -> str:
        of = f" of a budget of {self.budget}" if self.budget is not None else ""
        text = (
            f"the sealed test set (split {self.split_version[:12]}) has been read"
            f" {self.reads} times{of}"
        )
        if self.worn:
            text += (
                "; it is worn out: its numbers now flatter the models chosen with it."
                " Add fresh labelled data (`mllife data add`): it adds new rows to the"
                " test split and starts a new count"
            )
        return text


def sealed_set_wear(store, split_version: str, budget: int | None) -> SealedSetWear:
    return SealedSetWear(split_version, store.test_read_count(split_version=split_version), budget)
