"""Which series is T1w, T2w or CE: a map of description patterns and parameters, like dcm2bids's config.

A map is JSON: `exclude` rules (each with a `reason`) are tried first, then the roles in the order
written; the first role with a matching rule takes the series. A rule matches when every criterion
it names holds. Criteria: `description` and `sequence` (regular expressions, searched), `plane`
("axial", "coronal", "sagittal"), `dimension` ("2D", "3D"), `series` (DICOM series number or Bruker
scan number), `package` (Bruker slice package, from 1), `echo` (the echo of a multi-echo series, from 1:
such echoes are taken only by a rule that names `echo` or `echo_time`), `echo_time`, `repetition_time`, `flip_angle`
([low, high], seconds and degrees), `contrast_agent` (true: the header names one), `source` ("dicom",
"bruker", "nifti"). A rule may carry a `note`, said when it maps a series. The default map ships as
`default_map.json` beside this file; `--map FILE` replaces it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from napari_hcc.errors import InputError
from napari_hcc.io.acquisition import Acquisition
from napari_hcc.io.json_files import check_roles, read_json_file

_RANGES = {"echo_time": "EchoTime", "repetition_time": "RepetitionTime", "flip_angle": "FlipAngle"}
_CRITERIA = {"description", "sequence", "plane", "dimension", "series", "package", "echo", "contrast_agent", "source"}
_CRITERIA |= set(_RANGES)


@dataclass(frozen=True)
class Rule:
    criteria: dict
    reason: str = ""  # exclude rules: why the series is left out
    note: str = ""  # role rules: said when the rule maps a series


@dataclass(frozen=True)
class RoleMap:
    source: str  # where the map came from (a file, or "the default map")
    exclude: tuple[Rule, ...]
    roles: tuple[tuple[str, tuple[Rule, ...]], ...]

    def role_of(self, acq: Acquisition) -> tuple[str | None, str]:
        """(role, note) for an acquisition, or (None, why it has none)."""
        for rule in self.exclude:
            if _matches(rule.criteria, acq):
                return None, rule.reason or "excluded by the map"
        echoes = int(acq.sidecar.get("EchoCount", 1))
        for role, rules in self.roles:
            for rule in rules:
                if echoes > 1 and not {"echo", "echo_time"} & set(rule.criteria):
                    continue
                if _matches(rule.criteria, acq):
                    return role, rule.note
        if echoes > 1:
            return None, (
                f"echo {acq.sidecar.get('EchoNumber')} of a {echoes}-echo series; to use one echo, name it in a "
                '--map rule ("echo": N or "echo_time": [low, high])'
            )
        return None, f"no rule of {self.source} gives it a role ({describe(acq)})"


def describe(acq: Acquisition) -> str:
    """A short line of what the headers say, for messages: description, sequence, TE and TR."""
    s = acq.sidecar
    bits = [f"'{acq.description}'"]
    if s.get("PulseSequenceType") or s.get("ScanningSequence"):
        bits.append(str(s.get("PulseSequenceType") or s.get("ScanningSequence")))
    if s.get("EchoTime") is not None:
        bits.append(f"TE {1000 * float(s['EchoTime']):.3g} ms")
    if s.get("RepetitionTime") is not None:
        bits.append(f"TR {1000 * float(s['RepetitionTime']):.4g} ms")
    return ", ".join(bits)


def _series_number(acq: Acquisition) -> int | None:
    s = acq.sidecar
    if "BrukerScan" in s:
        return int(s["BrukerScan"]["scan"])
    return int(s["SeriesNumber"]) if s.get("SeriesNumber") is not None else None


def _matches(criteria: dict, acq: Acquisition) -> bool:
    s = acq.sidecar
    for key, want in criteria.items():
        if key == "description" and not re.search(want, acq.description or ""):
            return False
        if key == "sequence":
            seq = " ".join(str(s.get(k, "")) for k in ("PulseSequenceType", "ScanningSequence", "SequenceName"))
            if not re.search(want, seq):
                return False
        if key == "plane" and acq.plane != want:
            return False
        if key == "dimension" and str(s.get("MRAcquisitionType", "")).upper() != str(want).upper():
            return False
        if key == "series" and _series_number(acq) != int(want):
            return False
        if key == "package" and int(s.get("BrukerScan", {}).get("slice_package", 1)) != int(want):
            return False
        if key == "echo" and int(s.get("EchoNumber", 1)) != int(want):
            return False
        if key == "source" and acq.source != want:
            return False
        if key == "contrast_agent" and bool(s.get("ContrastBolusAgent")) != bool(want):
            return False
        if key in _RANGES:
            value = s.get(_RANGES[key])
            if value is None or not (float(want[0]) <= float(value) <= float(want[1])):
                return False
    return True


def _rule(raw, where: str, kind: str) -> Rule:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: each {kind} rule must be a JSON object, not {raw!r}.")
    criteria = {k: v for k, v in raw.items() if k not in ("reason", "note")}
    unknown = sorted(set(criteria) - _CRITERIA)
    if unknown:
        raise InputError(f"{where}: unknown criterion {unknown[0]!r}; known are {', '.join(sorted(_CRITERIA))}.")
    if not criteria:
        raise InputError(f"{where}: a {kind} rule with no criterion would match every series.")
    for key in ("description", "sequence"):
        if key in criteria:
            try:
                re.compile(criteria[key])
            except (re.error, TypeError) as exc:
                raise InputError(f"{where}: {key} {criteria[key]!r} is not a regular expression ({exc}).") from None
    for key in _RANGES:
        value = criteria.get(key)
        if value is not None and not (isinstance(value, list) and len(value) == 2):
            raise InputError(f"{where}: {key} must be [low, high], not {value!r}.")
    return Rule(criteria, str(raw.get("reason", "")), str(raw.get("note", "")))


def parse_map(data: dict, source: str) -> RoleMap:
    """A RoleMap from its JSON form, or an InputError naming the problem."""
    if not isinstance(data, dict):
        raise InputError(f"{source} must hold a JSON object with 'roles' (and optionally 'exclude').")
    roles = data.get("roles")
    if not isinstance(roles, dict) or not roles:
        raise InputError(f'{source} has no \'roles\' object (e.g. {{"roles": {{"T2w": [{{"description": "T2"}}]}}}}).')
    check_roles(roles, source)
    exclude = tuple(_rule(r, f"{source} exclude[{i}]", "exclude") for i, r in enumerate(data.get("exclude", [])))
    parsed = []
    for role, rules in roles.items():
        rules = rules if isinstance(rules, list) else [rules]
        parsed.append((role, tuple(_rule(r, f"{source} roles.{role}[{i}]", role) for i, r in enumerate(rules))))
    return RoleMap(source, exclude, tuple(parsed))


def default_map() -> RoleMap:
    text = resources.files("napari_hcc.importing").joinpath("default_map.json").read_text(encoding="utf-8")
    return parse_map(json.loads(text), "the default map")


def load_map(path: str | Path | None) -> RoleMap:
    """The map in a JSON file, or the default map when `path` is None."""
    if path is None:
        return default_map()
    return parse_map(read_json_file(path, "map"), f"map {Path(path).name}")
