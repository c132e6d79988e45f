from __future__ import annotations

import pytest

from drill.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize("text, seconds", [
    ("30 minutes", 1800), ("1 hour", 3600), ("90 seconds", 90), ("1h30m", 5400), ("30m", 1800), ("2h", 7200),
    ("500 milliseconds", 0.5), ("0.2 seconds", 0.2), ("1 hour and 30 minutes", 5400), ("2m30s", 150),
    ("1 second", 1), ("1ms", 0.001), ("1d", 86400), ("90 days", 90 * 86400), ("1 day", 86400), ("2d12h", 216000),
])
def test_durations_as_operators_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "5 parsecs", "1h30", "30 minutes later", "minutes"])
def test_unreadable_durations_say_what_is_accepted(text: str) -> None:
    with pytest.raises(DurationError, match=r"e\.g\. `30 minutes`"):
        parse_duration(text)


@pytest.mark.parametrize("seconds, text", [(None, "-"), (0.25, "250ms"), (12.34, "12.3s"), (1800, "30m"),
                                           (125, "2m05s"), (3600, "1h"), (5400, "1h30m")])
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text
