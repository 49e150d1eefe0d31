from __future__ import annotations

import pytest

from latentcast.server.ranges import UnsatisfiableRange, parse_range

TOTAL = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-499", (0, 499)),
        ("bytes=500-999", (500, 999)),
        ("bytes=0-0", (0, 0)),
        ("bytes=999-999", (999, 999)),
        ("bytes=0-999", (0, 999)),
        ("bytes=10-10", (10, 10)),
    ],
)
def test_parse_closed_range(header: str, expected: tuple[int, int]) -> None:
    assert parse_range(header, TOTAL) == expected


def test_parse_last_position_past_end_clamped() -> None:
    assert parse_range("bytes=900-5000", TOTAL) == (900, 999)


def test_parse_last_position_at_total_clamped() -> None:
    assert parse_range("bytes=0-1000", TOTAL) == (0, 999)


@pytest.mark.parametrize(("header", "expected"), [("bytes=0-", (0, 999)), ("bytes=999-", (999, 999))])
def test_parse_open_ended_range(header: str, expected: tuple[int, int]) -> None:
    assert parse_range(header, TOTAL) == expected


@pytest.mark.parametrize(
    ("header", "expected"), [("bytes=-1", (999, 999)), ("bytes=-100", (900, 999)), ("bytes=-1000", (0, 999))]
)
def test_parse_suffix_range(header: str, expected: tuple[int, int]) -> None:
    assert parse_range(header, TOTAL) == expected


def test_parse_suffix_longer_than_file_selects_all() -> None:
    assert parse_range("bytes=-5000", TOTAL) == (0, 999)


@pytest.mark.parametrize("header", ["BYTES=0-9", "Bytes=0-9", " bytes = 0-9 ", "bytes=0-9,", "bytes=,0-9"])
def test_parse_tolerates_case_whitespace_and_empty_elements(header: str) -> None:
    assert parse_range(header, TOTAL) == (0, 9)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "bytes",
        "bytes=",
        "bytes=-",
        "bytes=abc",
        "bytes=1-a",
        "bytes=a-1",
        "bytes=5",
        "bytes=9-5",
        "bytes=+1-5",
        "bytes=1--5",
        "bytes=1-5-7",
        "bytes=0x10-20",
        "bytes=١-٢",
        "items=0-9",
        "0-9",
        "bytes=,",
    ],
)
def test_parse_malformed_returns_none(header: str) -> None:
    assert parse_range(header, TOTAL) is None


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=0-1, 5-6", "bytes=-5,0-1", "bytes=0-,0-"])
def test_parse_multi_range_returns_none(header: str) -> None:
    assert parse_range(header, TOTAL) is None


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-1000", "bytes=5000-6000", "bytes=-0"])
def test_parse_unsatisfiable_raises(header: str) -> None:
    with pytest.raises(UnsatisfiableRange) as caught:
        parse_range(header, TOTAL)
    assert caught.value.total == TOTAL
    assert caught.value.header == header


@pytest.mark.parametrize("header", ["bytes=0-", "bytes=0-0", "bytes=-1"])
def test_parse_empty_representation_unsatisfiable(header: str) -> None:
    with pytest.raises(UnsatisfiableRange):
        parse_range(header, 0)


def test_parse_empty_representation_malformed_returns_none() -> None:
    assert parse_range("bytes=5-1", 0) is None


def test_unsatisfiable_message_names_range_and_total() -> None:
    assert str(UnsatisfiableRange("bytes=1000-", TOTAL)) == (
        "range 'bytes=1000-' selects no byte of a representation of 1000 bytes"
    )
