"""Best available: one row, adjacent, nearest the sweet spot, no stranded seats."""

from __future__ import annotations

import time
from collections.abc import Iterable

import pytest

from actors.best_available import choose_best
from actors.errors import CompanionWithoutWheelchair, InvalidRequest, NoSeatsAvailable
from actors.layout import Layout, SeatState
from tests.unit.plans import plan


def states(layout: Layout, taken: Iterable[str] = ()) -> dict[str, SeatState]:
    taken = set(taken)
    return {
        spec.label: SeatState.BLOCKED
        if spec.out_of_service
        else SeatState.BOOKED
        if spec.label in taken
        else SeatState.AVAILABLE
        for spec in layout
    }


def test_one_row_adjacent() -> None:
    layout = plan("SSSSSS", "SSSSSS", "SSSSSS")
    seats = choose_best(layout, states(layout), 4, "standard")
    specs = [layout.seat(label) for label in seats]
    assert len({spec.row for spec in specs}) == 1
    positions = [spec.position for spec in specs]
    assert positions == list(range(positions[0], positions[0] + 4))


def test_nearest_the_sweet_spot() -> None:
    layout = plan("SSSSSS", "SSSSSS", "SSSSSS", sweet_spot=(2.5, 1.0))
    assert choose_best(layout, states(layout), 2, "standard") == ("B3", "B4")
    layout = plan("SSSSSS", "SSSSSS", "SSSSSS", sweet_spot=(0.0, 2.0))
    assert choose_best(layout, states(layout), 3, "standard") == ("C1", "C2", "C3")


def test_default_sweet_spot_is_two_thirds_back_in_the_middle() -> None:
    layout = plan("SSSSS", "SSSSS", "SSSSS", "SSSSS")
    assert layout.sweet_spot == (2.0, 2.0)
    assert choose_best(layout, states(layout), 1, "standard") == ("C3",)


def test_ties_go_front_then_left() -> None:
    layout = plan("SSS", "SSS", sweet_spot=(1.0, 0.5))
    assert choose_best(layout, states(layout), 3, "standard") == ("A1", "A2", "A3")
    layout = plan("SSSSSSSS", sweet_spot=(3.5, 0.0))
    assert choose_best(layout, states(layout), 3, "standard") == ("A3", "A4", "A5")


def test_never_strands_a_single_seat() -> None:
    layout = plan("SSSSS", sweet_spot=(2.6, 0.0))
    # A3-A4 is nearest but would strand A2 next to the taken A1.
    assert choose_best(layout, states(layout, ["A1"]), 2, "standard") == ("A4", "A5")
    # Three free seats and two wanted: every choice strands one.
    with pytest.raises(NoSeatsAvailable):
        choose_best(layout, states(layout, ["A1", "A2"]), 2, "standard")


def test_a_seat_stranded_before_does_not_count() -> None:
    layout = plan("SSSSSS", sweet_spot=(0.0, 0.0))
    # A1 is already alone between the row end and the taken A2.
    assert choose_best(layout, states(layout, ["A2"]), 2, "standard") == ("A3", "A4")
    assert choose_best(layout, states(layout, ["A2"]), 1, "standard") == ("A1",)


def test_aisles_break_adjacency() -> None:
    layout = plan("SS|SS")
    assert layout.neighbours("A2") == ("A1",)
    with pytest.raises(NoSeatsAvailable):
        choose_best(layout, states(layout), 3, "standard")
    assert choose_best(layout, states(layout), 2, "standard") in {("A1", "A2"), ("A3", "A4")}


def test_split_across_rows_only_when_allowed() -> None:
    layout = plan("SSSSSS", "SSSSSS", "SSSSSS")
    taken = ["A1", "A2", "A5", "A6", "B1", "B2", "B5", "B6", "C1", "C2", "C5", "C6"]
    with pytest.raises(NoSeatsAvailable):
        choose_best(layout, states(layout, taken), 4, "standard")
    seats = choose_best(layout, states(layout, taken), 4, "standard", allow_split=True)
    rows = sorted({layout.seat(label).row for label in seats})
    assert len(seats) == 4
    assert rows in (["A", "B"], ["B", "C"])
    assert {label[1:] for label in seats} == {"3", "4"}  # one block behind the other


def test_split_prefers_the_fewest_blocks() -> None:
    # Free runs of 3 (A), 3 (C) and 4 (E), rows apart so no pair is front/back.
    layout = plan("SSSSS", "SSSSS", "SSSSS", "SSSSS", "SSSSS", sweet_spot=(2.0, 4.0))
    taken = ["A4", "A5", "C1", "C2"] + [f"{row}{n}" for row in "BD" for n in range(1, 6)]
    taken += ["E1"]
    seats = choose_best(layout, states(layout, taken), 6, "standard", allow_split=True)
    assert sorted(seats) == ["A1", "A2", "A3", "C3", "C4", "C5"]


def test_split_relaxes_the_orphan_rule_only_as_a_last_resort() -> None:
    layout = plan("SSSSS")
    taken = ["A1", "A2"]
    assert choose_best(layout, states(layout, taken), 2, "standard", allow_split=True) in {
        ("A3", "A4"),
        ("A4", "A5"),
    }


def test_wheelchair_spaces_come_with_adjacent_companions() -> None:
    layout = plan("CWWCSSSS", sweet_spot=(1.5, 0.0))
    assert choose_best(layout, states(layout), 4, "wheelchair") == ("A1", "A2", "A3", "A4")
    pair = choose_best(layout, states(layout), 2, "wheelchair")
    categories = [layout.seat(label).category for label in pair]
    assert "wheelchair" in categories
    for label in pair:
        if layout.seat(label).category == "companion":
            assert any(
                layout.seat(other).category == "wheelchair" and other in pair
                for other in layout.neighbours(label)
            )


def test_wheelchair_never_sells_a_companion_away_from_its_space() -> None:
    layout = plan("WCCS")
    # C3 is next to C2 only: a block of three would hold a companion with no wheelchair space.
    with pytest.raises(NoSeatsAvailable):
        choose_best(layout, states(layout), 3, "wheelchair")
    with pytest.raises(NoSeatsAvailable):
        choose_best(layout, states(layout, ["A1"]), 1, "wheelchair")


def test_out_of_service_seats_are_skipped() -> None:
    layout = plan("SSXSS", sweet_spot=(2.0, 0.0))
    seats = choose_best(layout, states(layout), 2, "standard")
    assert "A3" not in seats
    with pytest.raises(NoSeatsAvailable):
        choose_best(layout, states(layout), 3, "standard")


def test_category_is_respected() -> None:
    layout = plan("SSPPPPSS", sweet_spot=(3.5, 0.0))
    assert choose_best(layout, states(layout), 2, "premium") == ("A4", "A5")
    assert all(
        layout.seat(label).category == "standard"
        for label in choose_best(layout, states(layout), 2, "standard")
    )
    with pytest.raises(NoSeatsAvailable):
        choose_best(layout, states(layout), 1, "recliner")


def test_companion_alone_is_refused() -> None:
    layout = plan("WC")
    with pytest.raises(CompanionWithoutWheelchair):
        choose_best(layout, states(layout), 1, "companion")


@pytest.mark.parametrize(("count", "category"), [(0, "standard"), (-1, "standard"), (2, "vip")])
def test_invalid_requests(count: int, category: str) -> None:
    layout = plan("SSSS")
    with pytest.raises(InvalidRequest):
        choose_best(layout, states(layout), count, category)


def test_fast_on_a_600_seat_hall() -> None:
    layout = plan(*["SSSSSSS|SSSSSSSSSSSSSSSS|SSSSSSS"] * 20)
    taken = [spec.label for spec in layout if (spec.position * 7 + spec.y * 3) % 5 == 0]
    seat_states = states(layout, taken)
    runs = 50
    start = time.perf_counter()
    for _ in range(runs):
        choose_best(layout, seat_states, 4, "standard")
    per_call = (time.perf_counter() - start) / runs
    assert per_call < 0.005  # measured well under a millisecond; generous for slow machines
