"""Figures of the report: small matplotlib (Agg) helpers shared by the section renderers."""
from __future__ import annotations

import html
import math
import os

__all__ = ["series", "panels_per", "line_panels", "bar_panel", "img", "num", "LOWER_BOUND"]

#: Statuses of a run stopped early whose measured peak is a lower bound of the true one.
LOWER_BOUND = ("timeout", "memory_limit")


def num(v) -> float:
    """``v`` as a float; NaN for None, empty strings and non-numbers."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x


def series(rows: list[dict], x: str, y: str, group, where=None) -> dict:
    """``{label: (xs, ys, ok_flags)}`` sorted by x; ``group`` is a key or a function of a row.

    Rows whose ``status`` is "timeout" or "memory_limit" (a run killed at its time or memory
    limit) get ``ok=False``: drawn hollow, their value is a lower bound.
    """
    out: dict = {}
    for r in rows:
        if where is not None and not where(r):
            continue
        xv, yv = num(r.get(x)), num(r.get(y))
        if math.isnan(xv) or math.isnan(yv):
            continue
        label = group(r) if callable(group) else str(r.get(group))
        bound = r.get("status") in LOWER_BOUND
        out.setdefault(label, []).append((xv, yv, not bound))
    return {k: tuple(map(list, zip(*sorted(v)))) for k, v in sorted(out.items())}


def panels_per(rows: list[dict], split: str, values, x: str, y: str, group: str,
               xlabel: str, ylabel: str, title: str) -> list[dict]:
    """One panel (for :func:`line_panels`) per value ``v`` of ``split`` in ``values``: ``y``
    against ``x``, one line per ``group``; ``title`` is formatted with ``v``."""
    return [{"series": series(rows, x, y, group, where=lambda r, v=v: r[split] == v),
             "xlabel": xlabel, "ylabel": ylabel, "title": title.format(v=v)} for v in values]


def tick_label(x: float) -> str:
    """A short label of a measured size: ``6400``, ``2.5e5``, ``1e7`` (3 significant digits
    above 1e4, so that neighbouring labels on a log axis do not run into each other)."""
    if x < 1e4:
        return f"{x:.4g}"
    mantissa, exponent = f"{x:.2e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def line_panels(path: str, panels: list[dict], title: str = "", width: float = 5.5) -> str:
    """Draw one row of line panels and save to ``path``; returns the file name.

    Each panel: ``series`` (from :func:`series`), ``xlabel``, ``ylabel``, ``title``,
    ``logx``, ``logy`` (default True), optional ``hlines`` [(y, label)] and, on a linear y
    axis, ``ymin``.
    """
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), 4), squeeze=False)
    for ax, p in zip(axes[0], panels):
        for i, (label, (xs, ys, ok)) in enumerate(p["series"].items()):
            color = f"C{i}"
            ax.plot(xs, ys, "-", color=color, label=label, alpha=0.8)
            good = [(a, b) for a, b, o in zip(xs, ys, ok) if o]
            bad = [(a, b) for a, b, o in zip(xs, ys, ok) if not o]
            if good:
                ax.plot(*zip(*good), "o", color=color)
            if bad:
                ax.plot(*zip(*bad), "^", color=color, mfc="none", ms=9,
                        label=f"{label} (lower bound)")
        for y, lab in p.get("hlines", []):
            ax.axhline(y, ls=":", color="gray")
            ax.annotate(lab, (0.01, y), xycoords=("axes fraction", "data"), fontsize=8,
                        color="gray", va="bottom")
        if p.get("logx", True):
            ax.set_xscale("log")
            xs_all = sorted({x for xs, _, _ in p["series"].values() for x in xs})
            if 0 < len(xs_all) <= 10:  # label the measured sizes, not powers of ten
                ax.set_xticks(xs_all, [tick_label(x) for x in xs_all], rotation=30,
                              ha="right", rotation_mode="anchor")
                ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        if p.get("logy", True):
            ax.set_yscale("log")
        elif "ymin" in p:
            ax.set_ylim(bottom=p["ymin"])
        ax.set_xlabel(p.get("xlabel", ""))
        ax.set_ylabel(p.get("ylabel", ""))
        ax.set_title(p.get("title", ""), fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        if p["series"]:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return os.path.basename(path)


def bar_panel(path: str, labels: list[str], groups: dict, ylabel: str, title: str,
              logy: bool = True) -> str:
    """Grouped bars: ``groups`` maps a legend label to one value per x label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    width = 0.8 / max(1, len(groups))
    for i, (g, vals) in enumerate(groups.items()):
        xs = [j + i * width for j in range(len(labels))]
        ax.bar(xs, [v if v and not math.isnan(v) else 0 for v in vals], width, label=g)
    ax.set_xticks([j + width * (len(groups) - 1) / 2 for j in range(len(labels))], labels)
    if logy:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return os.path.basename(path)


def img(fname: str, caption: str) -> str:
    """HTML for a figure with its caption (what the figure shows, in words)."""
    return (f"<figure><img src='{html.escape(fname)}' alt='{html.escape(caption)}'>"
            f"<figcaption class='small'>{html.escape(caption)}</figcaption></figure>")
