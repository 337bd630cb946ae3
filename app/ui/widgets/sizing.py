"""How the text views report fits the window (docs/architecture.md, "Parts and their rooms"):
nothing that merely reports may set the window's minimum width, and a wrap never splits a fact."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QSizePolicy


def shrink_to_fit(label: QLabel) -> None:
    """A wrapped label whose text holds long unbreakable words (run ids, trace ids) would
    otherwise ask for their full width; it takes the width it is given and wraps in it."""
    policy = label.sizePolicy()
    policy.setHorizontalPolicy(QSizePolicy.Policy.Ignored)
    label.setSizePolicy(policy)


def fact_line(*facts: str) -> str:
    """Facts joined by " · ", each kept whole on a wrap ("p95 221 ms" never splits)."""
    return " · ".join(fact.replace(" ", "\u00a0") for fact in facts if fact)
