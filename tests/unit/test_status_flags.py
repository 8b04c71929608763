"""``seatserver status`` refuses flags out of range at the edge, with argparse's usage error."""

from __future__ import annotations

import pytest

from seatserver import cli


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--top", "0"],
        ["status", "--top", "-3"],
        ["status", "--top", "1001"],
        ["status", "--top", "ten"],
        ["status", "--watch", "0"],
        ["status", "--watch", "soon"],
    ],
    ids=["top-zero", "top-negative", "top-huge", "top-word", "watch-zero", "watch-word"],
)
def test_out_of_range_flags_are_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.build_parser().parse_args(argv)
    assert stopped.value.code == 2
    assert "status: error: argument" in capsys.readouterr().err


def test_flags_in_range_are_taken() -> None:
    args = cli.build_parser().parse_args(["status", "--top", "25", "--watch", "2.5"])
    assert (args.top, args.watch) == (25, 2.5)
