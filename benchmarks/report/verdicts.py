"""The report's verdicts: their words, and the rule behind each target of sections (a)-(e).

A verdict is ``{"target", "measured", "ok"}``: ``ok`` is True (met), False (not met) or
None (not measured: the quantity is missing, or only a bound of it is known and the bound
decides nothing). The rules are functions of plain numbers so that each can be tested from
given numbers, apart from the rows and figures they are computed from.
"""
from __future__ import annotations

import math

__all__ = ["WORDS", "word", "css_class", "verdict", "is_ok", "all_met", "backward_ok",
           "dense_memory_ok", "ce_memory_ok", "step_time_ok", "cv_choice_ok", "ihs_ok",
           "netlib_solved_ok", "none_listed", "random_lp_ok", "memory_ratio_ok"]

#: The word shown for each value of a verdict's ``ok``.
WORDS = {True: "met", False: "not met", None: "not measured"}
_CSS = {True: "verdict-pass", False: "verdict-fail", None: "verdict-na"}


def word(ok) -> str:
    """"met", "not met" or "not measured" for ``ok`` True, False or None."""
    return WORDS[ok]


def css_class(ok) -> str:
    """The page's CSS class of a verdict cell (see ``html._STYLE``)."""
    return _CSS[ok]


def verdict(target: str, measured: str, ok) -> dict:
    """One line of a section's verdict table; ``ok`` None means "not measured"."""
    return {"target": target, "measured": measured, "ok": ok}


def is_ok(r: dict) -> bool:
    """True for a row whose measurement completed."""
    return r.get("status", "ok") in ("ok", True, "")


def all_met(flags: list):
    """One verdict from several: None if there are none or any is undecided (and none
    failed), False if any failed, else True."""
    if not flags:
        return None
    if any(f is False for f in flags):
        return False
    return True if all(f is True for f in flags) else None


def backward_ok(ratio: float) -> bool:
    """(a), (b): the LP layer's backward takes at most 0.2x its forward."""
    return ratio <= 0.2


# ------------------------------------------------------------------------ (b) ResNet-18
def dense_memory_ok(ratio: float, lower_bound: bool):
    """(b): the dense port needs >= 10x our memory at batch 200.

    A killed or memory-capped dense run gives a lower bound of the ratio: it meets the
    target if the bound does, and says nothing otherwise.
    """
    return ratio >= 10 or (None if lower_bound else False)


def ce_memory_ok(ratio: float) -> bool:
    """(b): our memory is at most 1.05x cross-entropy's at batch 200."""
    return ratio <= 1.05


def step_time_ok(ratio: float) -> bool:
    """(b): our training step takes at most 1.1x cross-entropy's."""
    return ratio <= 1.1


# ------------------------------------------------------------------ (d) sketches and SDR
def cv_choice_ok(n_within: int, n_reaching: int):
    """(d): cross-validation picks within one grid step of the smallest ratio keeping the
    cosine >= 0.95, for every (LP, projection) pair that reaches 0.95 at all."""
    return n_within == n_reaching if n_reaching else None


def ihs_ok(sketches_meeting: list) -> bool:
    """(d): some sketch meets all IHS targets (<= 2x iterations, >= 5x faster, 1e-6)."""
    return any(bool(m) for m in sketches_meeting)


# --------------------------------------------------------------- (e) Netlib and random LPs
def netlib_solved_ok(n_solved: int, n_feasible: int) -> bool:
    """(e): at least 80% of the feasible Netlib problems solved to 1e-6."""
    return n_solved / n_feasible >= 0.8


def none_listed(names: list) -> bool:
    """(e): no problem in ``names`` (those reported optimal wrongly)."""
    return not names


def random_lp_ok(rel_err: float, time_ratio: float):
    """(e): a random LP solved to 1e-6 relative error in at most 0.5x HiGHS's time; None
    where either number is missing."""
    if math.isnan(rel_err + time_ratio):
        return None
    return bool(rel_err <= 1e-6 and time_ratio <= 0.5)


def memory_ratio_ok(ratio: float) -> bool:
    """(e): a sparse random LP's peak memory is at most 10x its CSR bytes."""
    return ratio <= 10
