"""PNG figures of a simulation's report, for planners: outbox depth over the year per level,
and how long each outage took to catch up. matplotlib is an optional extra
(``pip install 'govnet[plots]'``), imported only here and only when plots are asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class PlotsUnavailable(RuntimeError):
    """matplotlib is not installed."""


def write_plots(report: Any, out: Path) -> list[Path]:
    """Write ``outbox.png`` and ``catch_up.png`` for ``report`` (a ``run.Report``) into ``out``."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no display
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotsUnavailable("--plots needs matplotlib: pip install 'govnet[plots]'") from None
    out.mkdir(parents=True, exist_ok=True)
    written = []
    fig, ax = plt.subplots(figsize=(9, 4))
    for level, series in report.outbox_series.items():
        if any(series):
            ax.plot(range(1, len(series) + 1), series, label=level)
    ax.set_xlabel("day")
    ax.set_ylabel("envelopes waiting (end of day)")
    ax.set_title(f"Outbox depth per level, seed {report.seed}")
    ax.legend()
    fig.tight_layout()
    path = out / "outbox.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
    fig, ax = plt.subplots(figsize=(9, 4))
    done = [o for o in report.outages if o["catch_up_h"] >= 0]
    ax.scatter([o["to_h"] - o["from_h"] for o in done], [o["catch_up_h"] for o in done], s=12)
    ax.set_xlabel("outage length (hours)")
    ax.set_ylabel("catch-up after it (hours)")
    ax.set_title(f"Catch-up after each outage ({len(done)} outages), seed {report.seed}")
    fig.tight_layout()
    path = out / "catch_up.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
    return written
