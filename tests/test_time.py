"""Since-filters and UTC normalisation shared by `crossroads usage`, `keys` and the admin API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from crossroads._time import as_utc, parse_since

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - timedelta(days=7)),
        (" 24h ", NOW - timedelta(hours=24)),
        ("30m", NOW - timedelta(minutes=30)),
        ("2w", NOW - timedelta(weeks=2)),
        ("2026-01-31", datetime(2026, 1, 31, tzinfo=UTC)),
        # An offset is converted, not relabelled: 10:00+02:00 is 08:00 UTC.
        ("2026-01-31T10:00+02:00", datetime(2026, 1, 31, 8, 0, tzinfo=UTC)),
    ],
)
def test_since_forms(text: str, expected: datetime) -> None:
    parsed = parse_since(text, now=NOW)
    assert parsed == expected and parsed.tzinfo == UTC


def test_bad_since_says_what_to_give() -> None:
    with pytest.raises(ValueError, match=r"give a duration \(7d, 24h, 30m, 2w\) or an ISO date"):
        parse_since("last tuesday", now=NOW)


def test_as_utc() -> None:
    assert as_utc(datetime(2026, 1, 1, 5)) == datetime(2026, 1, 1, 5, tzinfo=UTC)
    shifted = as_utc(datetime(2026, 1, 1, 5, tzinfo=timezone(timedelta(hours=-3))))
    assert shifted == datetime(2026, 1, 1, 8, tzinfo=UTC) and shifted.tzinfo == UTC
