"""The receipt number as the applicant's receipt prints it: a Code 128 barcode (what a window's
scanner reads) and a QR code (what a phone or the self-service terminal reads), both inline SVG
so the printed page needs no image request and prints sharp."""

from __future__ import annotations

import barcode
import segno
from barcode.writer import SVGWriter


def code128_svg(text: str) -> str:
    """``text`` as a Code 128 barcode, an ``<svg>`` element (no XML prolog: it goes inline)."""
    svg = barcode.Code128(text, writer=SVGWriter()).render({"module_height": 12.0, "font_size": 8, "text_distance": 4})
    body = svg.decode("utf-8")
    return body[body.index("<svg"):]


def qr_svg(text: str) -> str:
    """``text`` as a QR code (error correction M: a crumpled receipt still scans), an ``<svg>`` element."""
    return segno.make(text, error="m").svg_inline(scale=4, title=text)
