"""The report's HTML: one self-contained page, figures as PNG files beside it."""
from __future__ import annotations

import html
import math

from .verdicts import css_class, word

__all__ = ["table", "page", "section", "summary"]

_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2em; border-bottom: 1px solid #aaa; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.8em 0; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #eee; } td.s { text-align: left; }
.claim { background: #f4f7fb; border-left: 4px solid #4a78b0; padding: 0.5em 1em; }
.verdict-pass { color: #17692b; font-weight: bold; }
.verdict-fail { color: #a11; font-weight: bold; }
.verdict-na { color: #886600; font-weight: bold; }
.missing { background: #fff4e0; border-left: 4px solid #d08a00; padding: 0.5em 1em; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
.small { color: #666; font-size: 0.85em; }
"""


def _cell(v) -> tuple[str, bool]:
    """(text, is_numeric) of a table cell."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "", True
    if isinstance(v, bool):
        return str(v), False
    if isinstance(v, float):
        return f"{v:.4g}", True
    if isinstance(v, int):
        return str(v), True
    return str(v), False


def table(rows: list[dict], columns=None, max_rows: int = 400) -> str:
    """An HTML table of ``rows`` (columns: the given ones that occur, else all keys)."""
    if not rows:
        return "<p class='small'>(no rows)</p>"
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    if columns:
        keys = [c for c in columns if c in keys]
    out = ["<table><tr>" + "".join(f"<th>{html.escape(str(k))}</th>" for k in keys) + "</tr>"]
    for r in rows[:max_rows]:
        cells = []
        for k in keys:
            text, numeric = _cell(r.get(k))
            cls = "" if numeric else " class='s'"
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    if len(rows) > max_rows:
        out.append(f"<p class='small'>{len(rows) - max_rows} more rows in the CSV.</p>")
    return "\n".join(out)


def section(key: str, title: str, claim: str, body: list[str], verdicts: list[dict],
            missing: list[str], csvs: list[str], seconds: float) -> str:
    """One report section: the claim, the measured ratios against their targets, the body.

    ``verdicts``: dicts with ``target`` (text), ``measured`` (text) and ``ok`` (True, False,
    or None when it could not be measured).
    """
    parts = [f"<h2 id='{key}'>({key}) {html.escape(title)}</h2>",
             f"<div class='claim'><b>Claim tested.</b> {claim}</div>"]
    if verdicts:
        rows = [f"<tr>{_verdict_cells(v)}<td class='s {css_class(v['ok'])}'>{word(v['ok'])}"
                "</td></tr>" for v in verdicts]
        parts.append("<table><tr><th>target</th><th>measured</th><th>verdict</th></tr>"
                     + "".join(rows) + "</table>")
    for m in missing:
        parts.append(f"<div class='missing'><b>Not available:</b> {html.escape(m)}</div>")
    parts += body
    if csvs:
        links = ", ".join(f"<a href='{html.escape(c)}'>{html.escape(c)}</a>" for c in csvs)
        parts.append(f"<p class='small'>Raw numbers: {links}. Section time {seconds:.0f} s.</p>")
    return "\n".join(parts)


def _verdict_cells(v: dict) -> str:
    """The target and measured cells of a verdict's row."""
    return (f"<td class='s'>{html.escape(v['target'])}</td>"
            f"<td class='s'>{html.escape(v['measured'])}</td>")


def summary(verdicts: dict) -> str:
    """All sections' verdicts (section key -> list) in one table for the top of the page."""
    rows = [f"<tr><td class='s'><a href='#{key}'>({key})</a></td>{_verdict_cells(v)}"
            f"<td class='s'>{word(v['ok'])}</td></tr>"
            for key, items in verdicts.items() for v in items]
    if not rows:
        return ""
    return ("<h2>Summary of the targets</h2><table><tr><th>section</th><th>target</th>"
            "<th>measured</th><th>verdict</th></tr>" + "".join(rows) + "</table>")


def page(title: str, intro: str, sections: list[str]) -> str:
    """The whole page."""
    return ("<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>{intro}\n" + "\n".join(sections) + "</body></html>\n")
