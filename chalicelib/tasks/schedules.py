"""Schedule expressions of periodic tasks: Unix cron and rates → EventBridge, and local matching.

A periodic task is declared with a 5-field Unix cron ("0 3 * * *") or a rate ("5 minutes").
EventBridge wants `cron(min hour day-of-month month day-of-week year)` with `?` in one of
the two day fields and Sunday = 1, and `rate(1 minute)` / `rate(5 minutes)` with the unit's
number matching. Whatever EventBridge could not run is refused at declaration. The local
runner matches the same EventBridge expressions against the clock (`next_run`), so `make run`
runs a periodic task when AWS would. Hand-written: croniter knows Unix cron, not
EventBridge's dialect, and is not in the Lambda package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_RATE = re.compile(r"^\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*$")
_RATE_EXPRESSION = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86_400}
_MONTHS = {m: i for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), start=1)}
_DAYS = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split(), start=1)}  # EventBridge: SUN = 1
_PART = re.compile(r"^(\*|\d+|[A-Z]{3})(?:-(\d+|[A-Z]{3}))?(?:/(\d+))?$")


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]


_FIELDS = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day of month", 1, 31, {}),
    _Field("month", 1, 12, _MONTHS),
    _Field("day of week", 1, 7, _DAYS),
    _Field("year", 1970, 2199, {}),
)


def rate_expression(rate: str) -> str:
    """ "5 minutes" → "rate(5 minutes)" (singular for 1, as EventBridge requires)."""
    match = _RATE.match(rate) if isinstance(rate, str) else None
    if match is None or int(match.group(1)) < 1:
        raise ValueError(f"rate {rate!r} must be a whole number of minutes, hours or days, like '5 minutes'")
    value, unit = int(match.group(1)), match.group(2).rstrip("s")
    return f"rate({value} {unit}{'' if value == 1 else 's'})"


def cron_expression(cron: str) -> str:
    """A 5-field Unix cron → EventBridge `cron(...)` (day of week 0-7 with Sunday 0 or 7 → 1-7)."""
    fields = cron.upper().split() if isinstance(cron, str) else []
    if len(fields) != 5:
        raise ValueError(f"cron {cron!r} must have 5 fields: minute hour day-of-month month day-of-week")
    minute, hour, dom, month, dow = fields
    if dom != "*" and dow != "*":
        raise ValueError(f"cron {cron!r}: EventBridge cannot restrict both the day of month and the day of week")
    if "/" in dow:
        raise ValueError(f"cron {cron!r}: EventBridge has no step (/) in the day of week")
    dow = "?" if dow == "*" else re.sub(r"\d+", lambda m: str(int(m.group()) % 7 + 1), dow)
    dom = "?" if dow != "?" else dom
    expression = f"cron({minute} {hour} {dom} {month} {dow} *)"
    _parse(expression)  # refuses what EventBridge would
    return expression


def _values(text: str, spec: _Field) -> set[int]:
    if text in ("*", "?"):
        return set(range(spec.low, spec.high + 1))
    found: set[int] = set()
    for part in text.split(","):
        match = _PART.match(part)
        if match is None:
            raise ValueError(f"{spec.name} {text!r} is not understood (use numbers, names, *, -, / and ,)")

        def number(token: str) -> int:
            value = spec.names.get(token) if token.isalpha() else int(token)
            if value is None or not spec.low <= value <= spec.high:
                raise ValueError(f"{spec.name} {token!r} is outside {spec.low}-{spec.high}")
            return value

        start_text, end_text, step_text = match.groups()
        start = spec.low if start_text == "*" else number(start_text)
        end = spec.high if start_text == "*" or (step_text and not end_text) else start
        if end_text:
            end = number(end_text)
        step = int(step_text) if step_text else 1
        if end < start or step < 1:
            raise ValueError(f"{spec.name} {part!r} is an empty range")
        found.update(range(start, end + 1, step))
    return found


def _parse(expression: str) -> list[set[int]]:
    inner = expression.removeprefix("cron(").removesuffix(")")
    parts = inner.split()
    if not expression.startswith("cron(") or len(parts) != 6:
        raise ValueError(f"{expression!r} is not an EventBridge cron expression")
    if (parts[2] == "?") == (parts[4] == "?"):
        raise ValueError(f"{expression!r}: exactly one of day of month and day of week must be '?'")
    return [_values(text, spec) for text, spec in zip(parts, _FIELDS, strict=True)]


def matches(expression: str, moment: datetime) -> bool:
    """Whether an EventBridge cron expression fires in the minute of `moment` (UTC)."""
    return _fires(_parse(expression), moment)


def _fires(fields: list[set[int]], moment: datetime) -> bool:
    minute, hour, dom, month, dow, year = fields
    weekday = (moment.weekday() + 1) % 7 + 1  # Python: Monday 0; EventBridge: Sunday 1
    return (
        moment.minute in minute
        and moment.hour in hour
        and moment.day in dom
        and moment.month in month
        and weekday in dow
        and moment.year in year
    )


def rate_seconds(expression: str) -> float:
    """Seconds between runs of an EventBridge `rate(...)` expression."""
    match = _RATE_EXPRESSION.match(expression)
    if match is None:
        raise ValueError(f"{expression!r} is not an EventBridge rate expression")
    return float(int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")])


def next_run(expression: str, after: datetime) -> datetime | None:
    """The first minute after `after` at which a cron expression fires (None within a year)."""
    fields = _parse(expression)
    moment = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(366 * 24 * 60):
        if _fires(fields, moment):
            return moment
        moment += timedelta(minutes=1)
    return None
