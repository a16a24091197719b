"""The gates that compare the challenger with the deployed champion on the same rows:
``beats_champion`` (the change, beyond chance by default: the paired interval's lower
bound must clear the margin) and ``significance`` (McNemar's test, when configured)."""

from __future__ import annotations

from mllife.promotion.gate_types import Evidence, Gate

__all__ = ["beats_champion", "significance"]


def _no_comparison(e: Evidence) -> str | None:
    """Why there is nothing to compare with, or None when there is a champion to beat."""
    if e.champion_hash is None:
        return "no champion yet (first run): only the absolute gates apply"
    if e.champion_hash == e.challenger_hash:
        return "the challenger is the deployed champion"
    if e.comparison is None:
        raise ValueError("a champion exists, so decide() needs the comparison with it")
    return None


def _points(x: float) -> str:
    """A change in a [0, 1] metric in points: 0.0056 -> "0.56 points"."""
    return f"{abs(x) * 100:.2f} points"


def beats_champion(e: Evidence) -> Gate:
    why_not = _no_comparison(e)
    if why_not is not None:
        observed = 0.0 if e.champion_hash == e.challenger_hash else None
        return Gate("beats_champion", True, observed, None, why_not, False)
    c, metric = e.comparison, e.metric
    delta, before = c.deltas[metric], c.champion[metric]
    need = max(e.policy.setting("min_improvement"), e.policy.min_relative_improvement * abs(before))
    versus = f"{e.split} {metric} {c.challenger[metric]:.4f} vs champion {before:.4f}"
    point_ok = delta >= need and (delta > 0 or need < 0)
    if not point_ok and delta <= 0 and need <= 0:
        # "change +0.0000 < required +0.0000" reads like a bug; say what it means
        change = "the same" if delta == 0 else f"lower by {-delta:.4f}"
        reason = f"{versus}: {change}, and a challenger must improve on the champion"
        return Gate("beats_champion", False, delta, need, reason, split=e.split)
    if e.policy.evidence == "interval":
        return _beats_beyond_chance(e, versus, delta, need)
    if need > 0:
        reason = f"{versus}: change {delta:+.4f} {'>=' if point_ok else '<'} required {need:+.4f}"
    elif delta > 0:
        reason = f"{versus}: better by {delta:.4f}"
    else:
        reason = f"{versus}: change {delta:+.4f}, within the allowed {need:+.4f}"
    return Gate("beats_champion", point_ok, delta, need, reason, split=e.split)


def _rows_to_tell(n_rows: int, interval, delta: float, need: float) -> str:
    """ " (about N rows would tell ...)": the rows at which an interval as wide, relative
    to its rows, would clear the margin (its width shrinks as one over the square root)."""
    if interval is None or not n_rows or delta <= need:
        return ""
    half = (interval[1] - interval[0]) / 2
    needed = int(n_rows * (half / (delta - need)) ** 2) + 1
    return f" (a change this size needs about {needed} rows of the {n_rows} to be told from chance)"


def _beats_beyond_chance(e: Evidence, versus: str, delta: float, need: float) -> Gate:
    """``evidence = "interval"``: the paired interval's lower bound must clear ``need``
    (McNemar's test stands in where no interval could be computed)."""
    c = e.comparison
    fixed, broken = len(c.wrong_to_right), len(c.right_to_wrong)
    rows = f"{fixed + broken} of {c.n_rows} rows differ: {fixed} fixed, {broken} broken"
    interval = c.intervals.get(e.metric)
    if interval is not None:
        low, high = interval
        ok = low > need if need == 0 else low >= need
        evidence = (
            f"{c.confidence:.0%} interval of the change [{low * 100:+.2f}, {high * 100:+.2f}]"
            f" points, lower bound {'above' if ok else 'not above'} the required"
            f" {need * 100:+.2f}; {rows}"
        )
    else:
        p = c.mcnemar_p_value
        ok = delta >= need and p <= 0.05
        evidence = f"no interval for {e.metric}; McNemar p={p:.3g} (needs <= 0.05); {rows}"
    change = f"better by {_points(delta)}" if delta > 0 else f"worse by {_points(delta)}"
    if ok:
        reason = f"{versus}: {change}, beyond chance ({evidence})"
    else:
        more = _rows_to_tell(c.n_rows, interval, delta, need)
        reason = (
            f"{versus}: {change}, but that could be chance ({evidence}) — not promoted;"
            f' collect more labelled data{more}, or set [promotion] evidence = "point" to'
            " promote on the observed change alone"
        )
    return Gate("beats_champion", ok, delta, need, reason, split=e.split)


def significance(e: Evidence) -> Gate:
    max_p = e.policy.setting("max_p_value")
    why_not = _no_comparison(e)
    if why_not is not None:
        if e.champion_hash is None:
            why_not = "no champion yet: nothing to compare with"
        return Gate("significance", True, None, max_p, why_not, False)
    c = e.comparison
    p = c.mcnemar_p_value
    if max_p is None:
        return Gate("significance", True, p, None, f"McNemar p={p:.3g} (not required)", False)
    reason = (
        f"McNemar p={p:.3g} {'<=' if p <= max_p else '>'} {max_p:g}"
        f" ({len(c.wrong_to_right)} fixed, {len(c.right_to_wrong)} broken on {e.split})"
    )
    return Gate("significance", p <= max_p, p, max_p, reason, split=e.split)
