"""Seat layouts drawn as text, for the seat-core tests."""

from __future__ import annotations

from dataclasses import replace

from actors.layout import Layout, SeatSpec

CODES = {
    "S": "standard",
    "P": "premium",
    "R": "recliner",
    "W": "wheelchair",
    "C": "companion",
    "X": "standard",
}


def plan(*rows: str, sweet_spot: tuple[float, float] | None = None) -> Layout:
    """Rows front to back, labelled A, B, ...; one letter per seat (X = out of service), '|' an
    aisle one seat wide. Seat ``n`` of a row is labelled ``f"{row}{n}"``, counting from 1."""
    specs: list[SeatSpec] = []
    for r, text in enumerate(rows):
        row, position, gap = chr(ord("A") + r), 0, 0.0
        for char in text:
            if char == "|":
                specs[-1] = replace(specs[-1], aisle_after=True)
                gap += 1.0
                continue
            specs.append(
                SeatSpec(
                    label=f"{row}{position + 1}",
                    row=row,
                    position=position,
                    category=CODES[char],
                    x=position + gap,
                    y=float(r),
                    out_of_service=char == "X",
                )
            )
            position += 1
    return Layout(specs, sweet_spot)
