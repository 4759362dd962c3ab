"""A shipping label as a one-page PDF, written by hand: text lines, frames and a Code 39 barcode.

PDF 1.4 with the standard Helvetica font (nothing embedded), one content stream, and a correct
cross-reference table, so any PDF viewer (and a browser's print dialog) opens it.
"""
from __future__ import annotations

# Code 39 in modules (1 = bar, 0 = space; a wide element is two modules); digits, "-" and the "*" start/stop.
CODE39 = {
    "0": "101001101101", "1": "110100101011", "2": "101100101011", "3": "110110010101",
    "4": "101001101011", "5": "110100110101", "6": "101100110101", "7": "101001011011",
    "8": "110100101101", "9": "101100101101", "-": "100101011011", "*": "100101101101",
}
PAGE_WIDTH, PAGE_HEIGHT = 288, 432  # 4 x 6 inches, the usual thermal label
MARGIN = 16


def code39_modules(value: str) -> str:
    """The barcode of value (digits and "-") as modules, with start/stop characters and narrow gaps."""
    unknown = sorted({c for c in value if c not in CODE39 or c == "*"})
    if unknown:
        raise ValueError(f"Code 39 here encodes digits and '-' only, not {unknown[0]!r}")
    return "0".join(CODE39[c] for c in f"*{value}*")


# Turkish letters WinAnsi lacks, written as the nearest letter it has (İstanbul -> Istanbul, Kadıköy -> Kadiköy).
_PLAIN = str.maketrans("ıİşŞğĞ", "iIsSgG")


def _escape(text: str) -> str:
    """Text for a PDF string literal in WinAnsi (cp1252; anything else left becomes '?')."""
    ansi = text.translate(_PLAIN).encode("cp1252", "replace").decode("cp1252")
    return ansi.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _bars(modules: str, x: float, y: float, width: float, height: float) -> list[str]:
    """Filled rectangles for each run of bar modules, scaled to width."""
    unit = width / len(modules)
    ops, start = [], None
    for i, module in enumerate(modules + "0"):
        if module == "1" and start is None:
            start = i
        elif module == "0" and start is not None:
            ops.append(f"{x + start * unit:.2f} {y:.2f} {(i - start) * unit:.2f} {height:.2f} re")
            start = None
    ops.append("f")
    return ops


def _text(x: float, y: float, size: int, text: str, bold: bool = False) -> str:
    """One line of text at (x, y)."""
    return f"BT /{'F2' if bold else 'F1'} {size} Tf {x:.2f} {y:.2f} Td ({_escape(text)}) Tj ET"


def label_pdf(*, tracking_number: str, carrier: str, sender: list[str], recipient: list[str], reference: str,
              weight_note: str = "") -> bytes:
    """A 4x6 inch label: carrier and tracking number, the barcode, sender, recipient and the shipper's reference."""
    ops = ["0.8 w", f"{MARGIN} {MARGIN} {PAGE_WIDTH - 2 * MARGIN} {PAGE_HEIGHT - 2 * MARGIN} re S"]
    top = PAGE_HEIGHT - MARGIN
    ops.append(_text(MARGIN + 8, top - 24, 16, carrier, bold=True))
    ops.append(_text(MARGIN + 8, top - 42, 9, "DEMO CARGO SERVICE - NOT A REAL SHIPMENT"))
    ops.append(f"{MARGIN} {top - 52} m {PAGE_WIDTH - MARGIN} {top - 52} l S")
    y = top - 70
    ops.append(_text(MARGIN + 8, y, 8, "FROM", bold=True))
    for line in sender[:3]:
        y -= 12
        ops.append(_text(MARGIN + 8, y, 9, line))
    y -= 22
    ops.append(_text(MARGIN + 8, y, 8, "TO", bold=True))
    for i, line in enumerate(recipient[:5]):
        y -= 15 if i == 0 else 12
        ops.append(_text(MARGIN + 8, y, 13 if i == 0 else 10, line, bold=i == 0))
    ops.append(f"{MARGIN} {y - 14} m {PAGE_WIDTH - MARGIN} {y - 14} l S")
    bar_width = PAGE_WIDTH - 2 * MARGIN - 24
    ops.extend(_bars(code39_modules(tracking_number), MARGIN + 12, MARGIN + 60, bar_width, 70))
    ops.append(_text(MARGIN + 12, MARGIN + 42, 14, tracking_number, bold=True))
    ops.append(_text(MARGIN + 12, MARGIN + 24, 8, f"Ref {reference}" + (f"  {weight_note}" if weight_note else "")))
    return write_pdf("\n".join(ops).encode("cp1252"))


def write_pdf(content: bytes) -> bytes:
    """A one-page PDF around a content stream, with Helvetica as F1 and Helvetica-Bold as F2."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] "
         "/Resources << /Font << /F1 5 0 R /F2 6 0 R >> >> /Contents 4 0 R >>").encode(),
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
