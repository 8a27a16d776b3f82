"""Preflight: may a submitted enhancement run at all? (seed 004's preflight validator)

Three checks, each with its figures as evidence:

- **schema**: the payload against its kind's JSON Schema (`jsonschema`, every error with
  its path);
- **requirements**: each PEP 508 requirement against the installed distributions
  (`packaging` specifiers, pre-releases allowed; a requirement whose marker does not apply
  here is skipped; one that does not parse fails);
- **thresholds**: seed 004's weighted threshold satisfaction. An item passes when its value
  is at least its minimum (a missing item counts 0.0); the score is Σ weight × value over
  the passing items; the check passes when no item of weight ≥ `critical_weight` fails and
  the score is ≥ `pass_score`.

>>> t = check_thresholds({"mandatory": 1, "proxy": .8, "alpha": .96, "sigma": .1, "governance": .9},
...                      PreflightSettings())
>>> t.passed, round(t.score, 3)
(True, 0.797)
>>> check_requirements(["numpy>=2", "surely-not-installed>=1"], {"numpy": "2.1.0"}.get).evidence["failed"]
['surely-not-installed>=1']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from jsonschema import Draft202012Validator
from packaging.requirements import InvalidRequirement, Requirement

from ._config import PreflightSettings

__all__ = ["Check", "Installed", "PayloadCheck", "Preflight", "check_requirements", "check_schema",
           "check_thresholds", "installed_version", "preflight"]

MAX_SCHEMA_ERRORS = 20
Installed = Callable[[str], "str | None"]
PayloadCheck = Callable[[str, Mapping[str, Any]], "str | None"]
"""(kind, payload) → what is wrong with the payload beyond its schema (None: nothing)."""


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    passed: bool
    score: float
    evidence: dict[str, Any] = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "score": self.score, **self.evidence}


@dataclass(frozen=True, slots=True)
class Preflight:
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks if not c.passed)

    def evidence(self) -> dict[str, Any]:
        return {c.name: c.as_dict() for c in self.checks}

    def message(self) -> str:
        if self.passed:
            return "preflight passed: " + ", ".join(f"{c.name} {c.score:.3g}" for c in self.checks)
        return "preflight failed: " + "; ".join(_why(c) for c in self.checks if not c.passed)


def installed_version(name: str) -> str | None:
    """The installed version of distribution `name`, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def check_schema(payload: Mapping[str, Any], schema: Mapping[str, Any]) -> Check:
    """The payload against `schema` (JSON Schema 2020-12).

    >>> check_schema({"model": 3}, {"type": "object", "properties": {"model": {"type": "string"}}}).evidence
    {'errors': [{'path': 'model', 'message': "3 is not of type 'string'"}]}
    """
    errors = sorted(Draft202012Validator(schema).iter_errors(payload), key=lambda e: (list(map(str, e.path)), e.message))
    listed = [{"path": ".".join(map(str, e.path)) or "(payload)", "message": e.message}
              for e in errors[:MAX_SCHEMA_ERRORS]]
    evidence: dict[str, Any] = {"errors": listed}
    if len(errors) > MAX_SCHEMA_ERRORS:
        evidence["more_errors"] = len(errors) - MAX_SCHEMA_ERRORS
    return Check("schema", not errors, 0.0 if errors else 1.0, evidence)


def check_requirements(requirements: Sequence[str], installed: Installed = installed_version) -> Check:
    """Each requirement against what `installed` says (a distribution name → its version or None)."""
    results, failed = [], []
    for text in requirements:
        entry: dict[str, Any] = {"requirement": text}
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            entry.update(ok=False, problem=f"not a PEP 508 requirement: {exc}")
        else:
            try:
                applies = req.marker is None or req.marker.evaluate()
            except Exception as exc:  # packaging's UndefinedComparison and kin: a marker this host cannot judge
                entry.update(ok=False, problem=f"its marker cannot be evaluated here: {exc}")
                results.append(entry)
                failed.append(text)
                continue
            if not applies:
                entry.update(ok=True, skipped="its marker does not apply here")
            else:
                version = installed(req.name)
                entry["installed"] = version
                if version is None:
                    entry.update(ok=False, problem="not installed")
                elif not req.specifier.contains(version, prereleases=True):
                    entry.update(ok=False, problem=f"{version} does not satisfy {req.specifier}")
                else:
                    entry["ok"] = True
        results.append(entry)
        if not entry["ok"]:
            failed.append(text)
    score = 1.0 - len(failed) / len(requirements) if requirements else 1.0
    return Check("requirements", not failed, score, {"requirements": results, "failed": failed})


def check_thresholds(values: Mapping[str, float], settings: PreflightSettings) -> Check:
    """Seed 004's weighted threshold satisfaction over `settings.items`."""
    items, score, critical = {}, 0.0, []
    for name, item in settings.items.items():
        value = float(values.get(name, 0.0))
        passed = value >= item.minimum
        items[name] = {"value": value, "minimum": item.minimum, "weight": item.weight, "passed": passed}
        if passed:
            score += item.weight * value
        elif item.weight >= settings.critical_weight:
            critical.append(name)
    score = round(score, 12)  # Σ of products: .797, not .7969999999999999
    passed = not critical and score >= settings.pass_score
    return Check("thresholds", passed, score, {"items": items, "critical_failures": critical,
                                               "pass_score": settings.pass_score,
                                               "critical_weight": settings.critical_weight})


def preflight(payload: Mapping[str, Any], schema: Mapping[str, Any], requirements: Sequence[str],
              thresholds: Mapping[str, float], settings: PreflightSettings,
              installed: Installed = installed_version, check: Callable[[Mapping[str, Any]], str | None] | None = None
              ) -> Preflight:
    """Every check, whatever the others say (the evidence shows all of them); `check`, when
    given and the schema holds, asks what else is wrong with the payload (`payload` check)."""
    schema_check = check_schema(payload, schema)
    checks = [schema_check, check_requirements(requirements, installed), check_thresholds(thresholds, settings)]
    if check is not None and schema_check.passed:
        problem = check(payload)
        checks.insert(1, Check("payload", problem is None, 0.0 if problem else 1.0, {"problem": problem}))
    return Preflight(tuple(checks))


def _why(c: Check) -> str:
    if c.name == "schema":
        first = c.evidence["errors"][0]
        return f"payload {first['path']}: {first['message']}" + (
            f" (+{len(c.evidence['errors']) - 1} more)" if len(c.evidence["errors"]) > 1 else "")
    if c.name == "payload":
        return f"payload: {c.evidence['problem']}"
    if c.name == "requirements":
        return "requirements not met: " + ", ".join(c.evidence["failed"])
    critical = c.evidence["critical_failures"]
    return (f"thresholds: {', '.join(critical)} below minimum" if critical
            else f"thresholds: score {c.score:.3f} < {c.evidence['pass_score']}")
