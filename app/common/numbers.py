"""Whole numbers from text as people and programs mean them: ASCII digits only.

`str.isdigit()` is true for '²' and '٣', and `int()` reads '٣' as 3 and ' 3' as 3, so a check
made with one and a conversion made with the other disagree (a crash), and a number no one
typed as such is accepted. Every setting, query parameter and variable the panel reads as a
whole number goes through `ascii_int`.
"""

from __future__ import annotations

ASCII_WHITESPACE = " \t\n\r\x0b\x0c"


def ascii_int(text: str, lo: int, hi: int) -> int | None:
    """The whole number `text` spells in ASCII digits (ASCII whitespace around it allowed),
    when lo <= it <= hi; None for anything else (a sign, a dot, another script's digits)."""
    digits = text.strip(ASCII_WHITESPACE)
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    if len(digits.lstrip("0")) > len(str(hi)):
        return None  # out of range, and never converted (no 4,300-digit conversion)
    value = int(digits)
    return value if lo <= value <= hi else None
