"""Experiment files: one TOML file per study or experiment, run by ``freqdyn run``.

Every file has the same shape, whether it puts theory next to trained networks (kind
``study``) or reproduces a grokking paper (the kinds of :mod:`freqdyn.grok`):

.. code-block:: toml

    [experiment]
    name = "gaussian-1d"
    kind = "study"                  # freqdyn.runs.kinds.KINDS
    description = "..."
    seeds = [0]

    [settings]                      # the CI size: seconds to minutes on 2 CPU cores
    case = "../pde/gaussian-1d.toml"
    widths = [512]
    tolerance = 0.4

    [full]                          # merged over [settings] by --full (the paper size)
    seeds = [0, 1, 2]
    widths = [16384]
    tolerance = 0.05

    [claim]
    text = "what the experiment must show"
    rule = "all(grokked)"           # optional: a check of kind "rule" over the report

    [[check]]                       # named, registered checks (freqdyn.runs.checks)
    kind = "tolerance"

``[[full.check]]`` entries, when given, replace the ``[[check]]`` list at full size (and
``[full.claim]`` the claim), so that a paper-size run is held to the paper's numbers.
``[[arm]]`` tables (studies) run several variants of one case; ``[sweep]`` sends the
independent runs to Dask workers (:mod:`freqdyn.runs.sweep`).

Every key is checked when the file is read, before anything trains: unknown tables and
keys (per kind), check kinds and their keys, and the names a rule uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from freqdyn.config import REQUIRED, Table
from freqdyn.errors import InputError
from freqdyn.inputs.case import read_toml
from freqdyn.runs.checks import checks_from_file
from freqdyn.runs.kinds import kind_entry

TABLES = {"experiment", "settings", "full", "claim", "check", "arm", "sweep"}
HEAD_KEYS = {"name", "kind", "description", "seeds"}
#: Keys of [full] besides the kind's settings.
FULL_EXTRA = {"seeds", "check", "claim"}
_MISSING = object()
#: The study-file shape of freqdyn 0.1 (top-level name, case, predictions, [measure]).
_OLD_STUDY_KEYS = {"case", "predictions", "pde", "tolerance", "measure"}


@dataclass(frozen=True)
class Experiment:
    """A parsed experiment file; ``settings`` already has ``[full]`` merged when ``full``."""

    name: str
    kind: str
    description: str
    text: str
    settings: MappingProxyType
    seeds: tuple[int, ...]
    claim_text: str
    checks: tuple[dict, ...]
    arms: tuple[dict, ...]
    full: bool
    path: Path | None
    sweep: MappingProxyType

    @property
    def paper(self) -> bool:
        """The full size is the paper's size for the grokking experiments."""
        return self.full

    @property
    def size(self) -> str:
        return "full" if self.full else "ci"

    @property
    def base(self) -> Path:
        """The folder relative paths in the file are resolved against."""
        return self.path.parent if self.path is not None else Path.cwd()

    @property
    def rule(self) -> str:
        """The rule of the first ``rule`` check ("" when there is none)."""
        return next((c["rule"] for c in self.checks if c["kind"] == "rule"), "")

    def table(self) -> Table:
        return Table(self.settings, "settings")

    def fingerprint(self, seed: int) -> str:
        """What a checkpoint of this experiment's run of ``seed`` must match to be resumed."""
        return json.dumps({"kind": self.kind, "settings": dict(self.settings), "seed": seed},
                          sort_keys=True, default=str)

    def get(self, key: str, default=None):
        """The setting ``key``, or ``default`` when the file does not give it."""
        return self.settings.get(key, default)

    def require(self, key: str):
        """The setting ``key``; an :class:`InputError` naming ``settings.<key>`` if absent."""
        value = self.settings.get(key, _MISSING)
        if value is _MISSING:
            raise InputError(f"settings.{key}", f"required by experiment kind {self.kind!r}")
        return value

    def number(self, key: str, default=_MISSING, *, low: float | None = None,
               high: float | None = None, integer: bool = False):
        """A numeric setting, checked: an InputError names ``settings.<key>``."""
        default = REQUIRED if default is _MISSING else default
        if integer:
            return self.table().integer(key, default, low=low, high=high)
        return self.table().number(key, default, low=low, high=high)


def _seeds(value, field: str) -> tuple[int, ...]:
    if (not isinstance(value, (list, tuple)) or not value
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                       for s in value)):
        raise InputError(field, f"must be a non-empty list of integers ≥ 0, got {value!r}")
    if len(set(value)) != len(value):
        raise InputError(field, f"repeats a seed: {list(value)}")
    return tuple(value)


def load_experiment(source: str | Path, *, text: str | None = None, full: bool = False,
                    paper: bool = False, seeds=None,
                    overrides: dict | None = None) -> Experiment:
    """Read and check an experiment file (or TOML ``text``, with ``source`` as its name).

    ``full`` (or its alias ``paper``) merges ``[full]`` over ``[settings]``; ``seeds``
    replaces the file's seeds; ``overrides`` (a dict of settings) is merged last.
    """

    full = full or paper
    path = Path(source) if text is None else None
    data, text = read_toml(source, text, "experiment")
    where = str(path) if path is not None else str(source)
    if "paper" in data:
        raise InputError("paper", f"{where}: the [paper] table is now [full] (the one size "
                                  "switch for CI and full or paper size); rename it")
    if "experiment" not in data and set(data) & _OLD_STUDY_KEYS:
        raise InputError("experiment", f"{where} is a study file of the old shape (top-level "
                                       "name/case/predictions, [measure]); move those keys "
                                       "into [experiment] and [settings] as in "
                                       "validation/gaussian-1d.toml (docs/experiments.md)")
    top = Table(data, "", TABLES)
    head = top.table("experiment", HEAD_KEYS, required=True)
    kind = head.string("kind")
    entry = kind_entry(kind)
    name = head.string("name", path.stem if path else str(source))
    settings = top.table("settings")
    full_table = top.table("full")
    known = entry.settings_keys
    if known is not None:
        settings.refuse_unknown(known)
        full_table.refuse_unknown(set(known) | FULL_EXTRA)
    merged = dict(settings.data)
    chosen_seeds = _seeds(head.get("seeds", [0]), "experiment.seeds")
    claim = top.table("claim", {"text", "rule"})
    check_list = data.get("check", [])
    if full:
        extra = dict(full_table.data)
        if "seeds" in extra:
            chosen_seeds = _seeds(extra.pop("seeds"), "full.seeds")
        if "claim" in extra:
            claim = Table(extra.pop("claim"), "full.claim", {"text", "rule"})
        if "check" in extra:
            check_list = extra.pop("check")
        merged.update(extra)
    if overrides:
        if known is not None:
            Table(overrides, "--set", known)
        merged.update(overrides)
    if seeds is not None:
        chosen_seeds = _seeds(list(seeds), "--seeds")
    arms = data.get("arm", [])
    if not isinstance(arms, list) or not all(isinstance(a, dict) for a in arms):
        raise InputError("arm", "must be an array of tables ([[arm]])")
    sweep = top.table("sweep").data
    checks = checks_from_file(check_list, claim.get("rule"), kind,
                              "full.check" if full and "check" in full_table else "check")
    if not checks:
        raise InputError("claim.rule", "is required, or at least one [[check]]: a claim with "
                                       "nothing to check would always hold")
    return Experiment(name=name, kind=kind, description=str(head.get("description", "")),
                      text=text, settings=MappingProxyType(merged), seeds=chosen_seeds,
                      claim_text=str(claim.get("text", "")), checks=tuple(checks),
                      arms=tuple(arms), full=full, path=path,
                      sweep=MappingProxyType(dict(sweep)))
