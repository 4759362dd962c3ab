"""EAN-13 barcodes drawn as bars, for printed paper (the pick list, the packing slip): no image library needed.

Only a barcode whose check digit is right is drawn: bars a scanner would refuse are worse than none, and the
digits are printed under the bars either way.
"""
from __future__ import annotations

from dataclasses import dataclass

# The left-hand "L" patterns of digits 0-9 (7 modules each, 1 = bar); "R" patterns are their complement and
# "G" patterns the R patterns reversed.
_L = ("0001101", "0011001", "0010011", "0111101", "0100011", "0110001", "0101111", "0111011", "0110111", "0001011")
_R = tuple("".join("1" if bit == "0" else "0" for bit in code) for code in _L)
_G = tuple(code[::-1] for code in _R)
# The first digit is not drawn: it chooses which of the six left digits use G patterns instead of L.
_PARITY = ("LLLLLL", "LLGLGG", "LLGGLG", "LLGGGL", "LGLLGG", "LGGLLG", "LGGGLL", "LGLGLG", "LGLGGL", "LGGLGL")
QUIET_LEFT, QUIET_RIGHT = 11, 7
MODULES = 95


def ean13_check_digit(first12: str) -> int:
    """The check digit of the first twelve digits: weights 1 and 3 alternating from the left."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return (10 - total % 10) % 10


def is_ean13(code: str) -> bool:
    """True for thirteen digits with a right check digit."""
    return len(code) == 13 and code.isascii() and code.isdigit() and ean13_check_digit(code[:12]) == int(code[12])


def ean13_modules(code: str) -> str:
    """The 95 modules of an EAN-13 code as a string of 1 (bar) and 0 (space); ValueError for anything else."""
    if not is_ean13(code):
        raise ValueError(f"not an EAN-13 code: {code!r}")
    parity = _PARITY[int(code[0])]
    left = "".join((_L if kind == "L" else _G)[int(d)] for kind, d in zip(parity, code[1:7], strict=True))
    right = "".join(_R[int(d)] for d in code[7:])
    return "101" + left + "01010" + right + "101"


@dataclass(frozen=True)
class Bars:
    """An EAN-13 code drawn as an SVG path: one rectangle per bar, on a grid one unit per module."""

    path: str
    width: int  # modules, quiet zones included
    height: int


def ean13_bars(code: str, height: int = 40) -> Bars | None:
    """The bars of a code as an SVG path (quiet zones around it), or None when it is not a valid EAN-13 code."""
    if not is_ean13(code):
        return None
    modules = ean13_modules(code)
    parts, x = [], 0
    while x < len(modules):
        if modules[x] == "1":
            run = len(modules[x:]) - len(modules[x:].lstrip("1"))
            parts.append(f"M{QUIET_LEFT + x} 0h{run}v{height}h-{run}z")
            x += run
        else:
            x += 1
    return Bars(path="".join(parts), width=QUIET_LEFT + MODULES + QUIET_RIGHT, height=height)
