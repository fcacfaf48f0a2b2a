"""The one reader of configuration tables (case files, studies, experiments, options).

:class:`Table` wraps one TOML table with the dotted name it has in the file (``train``,
``network.rho_w``, ``settings``) and reads typed values from it.  Every problem is an
:class:`~freqdyn.errors.InputError` naming ``<table>.<key>`` and what was expected, so
that a bad value is refused in one line before any work starts:

    >>> t = Table({"width": -3}, "train")
    >>> t.integer("width", 1024, low=2)
    Traceback (most recent call last):
    ...
    freqdyn.errors.InputError: train.width: must be an integer >= 2, got -3

``known`` keys are checked up front (:meth:`Table.refuse_unknown`), so that a misspelt key
is an error, not a silently ignored setting.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping

from freqdyn.errors import InputError

REQUIRED = object()
"""Default meaning "this key must be given"."""


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Table:
    """Typed, validated access to one configuration table (see the module docstring)."""

    def __init__(self, data: Mapping | None, name: str, known: Iterable[str] | None = None):
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise InputError(name, f"must be a table, got {data!r}")
        self.data = dict(data)
        self.name = name
        if known is not None:
            self.refuse_unknown(known)

    def field(self, key: str) -> str:
        """The dotted name of ``key`` in the file."""
        return f"{self.name}.{key}" if self.name else key

    def refuse_unknown(self, known: Iterable[str]) -> None:
        """Refuse any key outside ``known``, suggesting the closest known one."""
        known = sorted(set(known))
        for key in sorted(set(self.data) - set(known)):
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InputError(self.field(key), f"unknown key{hint} (known: {', '.join(known)})")

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str, default=None):
        """The raw value (no check)."""
        return self.data.get(key, default)

    def _raw(self, key: str, default):
        if key not in self.data:
            if default is REQUIRED:
                raise InputError(self.field(key), "is required")
            return default, False
        return self.data[key], True

    def number(self, key: str, default=REQUIRED, *, low: float | None = None,
               high: float | None = None, low_open: bool = False, high_open: bool = False,
               allow_none: bool = False):
        """A finite real number in [low, high] (open ends with ``low_open``/``high_open``)."""
        value, given = self._raw(key, default)
        if not given or (value is None and allow_none):
            return value
        if not _is_number(value) or not math.isfinite(value):
            raise InputError(self.field(key), f"must be a finite number, got {value!r}")
        self._check_range(key, value, low, high, low_open, high_open, "a finite number")
        return float(value)

    def integer(self, key: str, default=REQUIRED, *, low: int | None = None,
                high: int | None = None, allow_none: bool = False):
        """An integer in [low, high]."""
        value, given = self._raw(key, default)
        if not given or (value is None and allow_none):
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            bound = f" >= {low}" if low is not None else ""
            raise InputError(self.field(key), f"must be an integer{bound}, got {value!r}")
        self._check_range(key, value, low, high, False, False, "an integer")
        return int(value)

    def _check_range(self, key, value, low, high, low_open, high_open, kind):
        bad_low = low is not None and (value <= low if low_open else value < low)
        bad_high = high is not None and (value >= high if high_open else value > high)
        if bad_low or bad_high:
            parts = []
            if low is not None:
                parts.append(f"{'>' if low_open else '>='} {low:g}")
            if high is not None:
                parts.append(f"{'<' if high_open else '<='} {high:g}")
            raise InputError(self.field(key), f"must be {kind} {' and '.join(parts)}, "
                                              f"got {value!r}")

    def boolean(self, key: str, default=REQUIRED) -> bool:
        value, given = self._raw(key, default)
        if given and not isinstance(value, bool):
            raise InputError(self.field(key), f"must be true or false, got {value!r}")
        return value

    def choice(self, key: str, default, options: Iterable):
        """One of ``options``."""
        options = list(options)
        value, _ = self._raw(key, default)
        if value not in options:
            raise InputError(self.field(key), f"must be one of {', '.join(map(str, options))}; "
                                              f"got {value!r}")
        return value

    def string(self, key: str, default=REQUIRED) -> str:
        value, given = self._raw(key, default)
        if given and (not isinstance(value, str) or not value):
            raise InputError(self.field(key), f"must be a non-empty string, got {value!r}")
        return value

    def numbers(self, key: str, default=REQUIRED, *, low: float | None = None,
                length: int | None = None, nonempty: bool = True) -> list[float]:
        """A list of finite numbers (each >= ``low``), of ``length`` entries when given."""
        value, given = self._raw(key, default)
        if not given:
            return value
        if not isinstance(value, list) or not all(_is_number(v) and math.isfinite(v)
                                                  for v in value):
            raise InputError(self.field(key), f"must be a list of finite numbers, got {value!r}")
        if nonempty and not value:
            raise InputError(self.field(key), "must not be empty")
        if length is not None and len(value) != length:
            raise InputError(self.field(key), f"must have {length} entries, got {len(value)}")
        if low is not None and any(v < low for v in value):
            raise InputError(self.field(key), f"entries must be >= {low:g}, got {value!r}")
        return [float(v) for v in value]

    def integers(self, key: str, default=REQUIRED, *, low: int | None = None,
                 nonempty: bool = True, unique: bool = False) -> list[int]:
        """A list of integers (each >= ``low``)."""
        value, given = self._raw(key, default)
        if not given:
            return value
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                  for v in value):
            raise InputError(self.field(key), f"must be a list of integers, got {value!r}")
        if nonempty and not value:
            raise InputError(self.field(key), "must not be empty")
        if low is not None and any(v < low for v in value):
            raise InputError(self.field(key), f"entries must be >= {low}, got {value!r}")
        if unique and len(set(value)) != len(value):
            raise InputError(self.field(key), f"repeats an entry: {value!r}")
        return [int(v) for v in value]

    def table(self, key: str, known: Iterable[str] | None = None,
              required: bool = False) -> Table:
        """The sub-table ``key`` as a :class:`Table` (empty when absent, unless required)."""
        value, given = self._raw(key, REQUIRED if required else None)
        return Table(value if given else {}, self.field(key), known)
