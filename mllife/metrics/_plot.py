"""Headless matplotlib figures as PNG bytes: the one place that sets up matplotlib, for
the metrics' own plots (the confusion heat map) and the reports' charts above them."""

from __future__ import annotations

import io

__all__ = ["figure", "to_png"]


def figure(width: float = 6.4, height: float = 3.2):
    """A headless matplotlib figure and axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=100)


def to_png(fig) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
