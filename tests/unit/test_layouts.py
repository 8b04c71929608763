from __future__ import annotations

import copy
from typing import Any

import pytest

from storage.errors import CompanionWithoutWheelchairSpace, DuplicateSeatLabel, InvalidLayout
from storage.layouts import MAX_SEATS, LayoutSummary, validate_layout


def seat(label: str, category: str = "standard", **extra: Any) -> dict[str, Any]:
    return {"label": label, "category": category, "x": float(len(label)), "y": 0.0, **extra}


def layout(*rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "rows": [{"label": chr(ord("A") + i), "seats": seats} for i, seats in enumerate(rows)],
        **extra,
    }


GOOD = layout(
    [seat("A1", "wheelchair"), seat("A2", "companion", aisle_after=True), seat("A3")],
    [seat("B1", "premium", out_of_service=True), seat("B2", "companion"), seat("B3", "wheelchair")],
    sweet_spot={"x": 1.5, "y": 6},
)


def test_a_good_layout_is_summarised() -> None:
    assert validate_layout(GOOD) == LayoutSummary(
        seat_count=6, categories=("companion", "premium", "standard", "wheelchair")
    )


def broken(change: Any) -> dict[str, Any]:
    bad = copy.deepcopy(GOOD)
    change(bad)
    return bad


@pytest.mark.parametrize(
    ("bad", "path"),
    [
        ([], "layout"),
        ({}, "layout"),
        ({"rows": []}, "rows"),
        ({"rows": "A1 A2"}, "rows"),
        (broken(lambda d: d.update(screen="front")), "layout"),
        (broken(lambda d: d.update(sweet_spot={"x": 1})), "sweet_spot"),
        (broken(lambda d: d["rows"][0].update(seats=[])), "rows[0].seats"),
        (broken(lambda d: d["rows"][1].pop("label")), "rows[1]"),
        (broken(lambda d: d["rows"][1].update(label="")), "rows[1].label"),
        (broken(lambda d: d["rows"][1].update(extra=1)), "rows[1]"),
        (broken(lambda d: d["rows"][0]["seats"][2].update(label=3)), "rows[0].seats[2].label"),
        (
            broken(lambda d: d["rows"][0]["seats"][2].update(category="vip")),
            "rows[0].seats[2].category",
        ),
        (broken(lambda d: d["rows"][0]["seats"][2].update(x=float("nan"))), "rows[0].seats[2].x"),
        (broken(lambda d: d["rows"][0]["seats"][2].update(y=float("inf"))), "rows[0].seats[2].y"),
        (broken(lambda d: d["rows"][0]["seats"][2].update(y="3")), "rows[0].seats[2].y"),
        (broken(lambda d: d["rows"][0]["seats"][2].update(x=True)), "rows[0].seats[2].x"),
        (broken(lambda d: d["rows"][0]["seats"][2].pop("y")), "rows[0].seats[2]"),
        (
            broken(lambda d: d["rows"][0]["seats"][2].update(aisle_after="yes")),
            "rows[0].seats[2].aisle_after",
        ),
        (broken(lambda d: d["rows"][0]["seats"][2].update(colour="red")), "rows[0].seats[2]"),
        (broken(lambda d: d["rows"][0]["seats"].append("A4")), "rows[0].seats[3]"),
    ],
)
def test_malformed_layouts_are_refused_with_the_bad_part(bad: object, path: str) -> None:
    with pytest.raises(InvalidLayout) as caught:
        validate_layout(bad)
    assert type(caught.value) is InvalidLayout
    assert caught.value.details["path"] == path
    assert path in caught.value.message


def test_too_many_seats() -> None:
    rows = [[seat(f"{r}-{n}") for n in range(50)] for r in range(MAX_SEATS // 50)]
    assert validate_layout(layout(*rows)).seat_count == MAX_SEATS
    rows[-1].append(seat("one-more"))
    with pytest.raises(InvalidLayout) as caught:
        validate_layout(layout(*rows))
    assert caught.value.details == {"path": "rows", "seat_count": MAX_SEATS + 1, "limit": MAX_SEATS}


def test_a_seat_label_used_twice_anywhere_is_refused() -> None:
    with pytest.raises(DuplicateSeatLabel) as caught:
        validate_layout(layout([seat("A1"), seat("X")], [seat("X"), seat("A1"), seat("B3")]))
    assert caught.value.details == {"kind": "seat", "labels": ["A1", "X"]}


def test_a_row_label_used_twice_is_refused() -> None:
    bad = broken(lambda d: d["rows"][1].update(label="A"))
    with pytest.raises(DuplicateSeatLabel) as caught:
        validate_layout(bad)
    assert caught.value.details == {"kind": "row", "labels": ["A"]}


@pytest.mark.parametrize(
    "row",
    [
        [seat("A1", "companion"), seat("A2")],  # no wheelchair space in the row
        [seat("A1", "wheelchair"), seat("A2"), seat("A3", "companion")],  # one seat too far
        [seat("A1", "wheelchair", aisle_after=True), seat("A2", "companion")],  # aisle between
        [seat("A1", "companion", aisle_after=True), seat("A2", "wheelchair")],
    ],
)
def test_a_companion_needs_a_wheelchair_space_right_beside_it(row: list[dict[str, Any]]) -> None:
    with pytest.raises(CompanionWithoutWheelchairSpace) as caught:
        validate_layout(layout(row))
    assert caught.value.details == {
        "labels": [s["label"] for s in row if s["category"] == "companion"]
    }


def test_a_wheelchair_space_in_the_next_row_does_not_count() -> None:
    with pytest.raises(CompanionWithoutWheelchairSpace):
        validate_layout(layout([seat("A1", "wheelchair")], [seat("B1", "companion")]))


def test_a_companion_between_an_aisle_and_a_wheelchair_space_is_fine() -> None:
    row = [
        seat("A1", "wheelchair", aisle_after=True),
        seat("A2", "companion"),
        seat("A3", "wheelchair"),
    ]
    assert validate_layout(layout(row)).seat_count == 3
