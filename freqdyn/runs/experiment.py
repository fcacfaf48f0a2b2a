"""Grokking experiment files: one TOML file per experiment, run by ``freqdyn grok``.

.. code-block:: toml

    [experiment]
    name = "aliasing-sin6x"
    kind = "aliasing"               # which experiment code runs it (freqdyn.runs.runner.KINDS)
    description = "sin 6x from aliased samples groks; the controls do not"
    seeds = [0, 1, 2]

    [settings]                      # the CI size: seconds to a few minutes on 2 CPU cores
    steps = 3000

    [paper]                         # merged over [settings] by `freqdyn grok FILE --paper`
    steps = 35000

    [claim]
    text = "test loss rises, then falls below its start, in every seed"
    rule = "all(grokked) and train_k1 > 5 * test_k1"

The claim rule is an expression over the keys of the experiment's ``summary.json``
(see :mod:`freqdyn.runs.claims`); its value is stored there as ``claim_holds``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from freqdyn.errors import InputError
from freqdyn.inputs.case import read_toml

TABLES = {"experiment", "settings", "paper", "claim", "sweep"}  # [sweep]: grok.sweep
_MISSING = object()


@dataclass(frozen=True)
class Experiment:
    """A parsed experiment file; ``settings`` already has ``[paper]`` merged when ``paper``."""

    name: str
    kind: str
    description: str
    text: str
    settings: MappingProxyType
    seeds: tuple[int, ...]
    rule: str
    claim_text: str
    paper: bool
    path: Path | None

    def fingerprint(self, seed: int) -> str:
        """What a checkpoint of this experiment's run of ``seed`` must match to be resumed."""
        import json

        return json.dumps({"kind": self.kind, "settings": dict(self.settings), "seed": seed},
                          sort_keys=True, default=str)

    def get(self, key: str, default=None):
        """The setting ``key``, or ``default`` when the file does not give it."""
        return self.settings.get(key, default)

    def require(self, key: str):
        """The setting ``key``; a :class:`InputError` naming ``settings.<key>`` if absent."""
        value = self.settings.get(key, _MISSING)
        if value is _MISSING:
            raise InputError(f"settings.{key}", f"required by experiment kind {self.kind!r}")
        return value

    def number(self, key: str, default=_MISSING, *, low: float | None = None,
               high: float | None = None, integer: bool = False):
        """A numeric setting, checked: a InputError names ``settings.<key>`` and the problem."""
        value = self.require(key) if default is _MISSING else self.settings.get(key, default)
        ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type:
            kind = "an integer" if integer else "a number"
            raise InputError(f"settings.{key}", f"must be {kind}, got {value!r}")
        if value != value or value in (float("inf"), float("-inf")):
            raise InputError(f"settings.{key}", f"must be finite, got {value!r}")
        if low is not None and value < low:
            raise InputError(f"settings.{key}", f"must be ≥ {low:g}, got {value!r}")
        if high is not None and value > high:
            raise InputError(f"settings.{key}", f"must be ≤ {high:g}, got {value!r}")
        return value


def load_experiment(source: str | Path, *, text: str | None = None, paper: bool = False,
                    seeds=None, overrides: dict | None = None) -> Experiment:
    """Read an experiment file (or TOML ``text``, with ``source`` as its name).

    ``paper`` merges the ``[paper]`` table over ``[settings]``; ``seeds`` replaces the
    file's seeds; ``overrides`` (a dict) is merged last, e.g. by tests that shrink a run.
    """
    path = Path(source) if text is None else None
    data, text = read_toml(source, text, "experiment")
    unknown = set(data) - TABLES
    if unknown:
        raise InputError(sorted(unknown)[0], f"unknown table; known: {sorted(TABLES)}")
    head = data.get("experiment")
    if not isinstance(head, dict):
        raise InputError("experiment", "the [experiment] table is required")
    kind = head.get("kind")
    if not isinstance(kind, str) or not kind:
        raise InputError("experiment.kind", f"must name an experiment kind, got {kind!r}")
    name = head.get("name", path.stem if path else str(source))
    if not isinstance(name, str) or not name:
        raise InputError("experiment.name", f"must be a non-empty string, got {name!r}")
    settings = data.get("settings", {})
    paper_table = data.get("paper", {})
    for table, value in (("settings", settings), ("paper", paper_table)):
        if not isinstance(value, dict):
            raise InputError(table, "must be a table")
    merged = dict(settings)
    if paper:
        merged.update(paper_table)
    if overrides:
        merged.update(overrides)
    seeds = head.get("seeds", [0]) if seeds is None else seeds
    if (not isinstance(seeds, (list, tuple)) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                       for s in seeds)):
        raise InputError("experiment.seeds", f"must be a non-empty list of integers ≥ 0, "
                                            f"got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise InputError("experiment.seeds", f"repeats a seed: {list(seeds)}")
    claim = data.get("claim", {})
    rule = claim.get("rule") if isinstance(claim, dict) else None
    if not isinstance(rule, str) or not rule.strip():
        raise InputError("claim.rule", "an expression over the summary's keys is required "
                                      "(what makes the claim hold)")
    from freqdyn.runs.claims import check_rule

    check_rule(rule)
    return Experiment(name=name, kind=kind, description=str(head.get("description", "")),
                      text=text, settings=MappingProxyType(merged), seeds=tuple(seeds),
                      rule=rule.strip(), claim_text=str(claim.get("text", "")),
                      paper=paper, path=path)
