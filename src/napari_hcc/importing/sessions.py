"""Sessions of an import: which acquisitions belong to which animal and session, and their BIDS labels.

An animal is its recorded ID (DICOM PatientID, ParaVision subject ID); a session is one study date of
that animal. `--subject` and `--session` name them instead, and are refused when the input holds more
than one animal or date, so that nothing is filed under the wrong animal.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field

from napari_hcc.errors import InputError
from napari_hcc.io.acquisition import Acquisition


@dataclass
class SessionPlan:
    subject: str  # BIDS label (letters and digits)
    session: str
    animal_id: str  # as recorded
    study_date: str
    roles: dict[str, tuple[Acquisition, str]] = field(default_factory=dict)  # role -> (acquisition, note)


def bids_label(text: str, what: str) -> str:
    """A BIDS label: the letters and digits of `text` (BIDS allows no '-', '_' or spaces in labels)."""
    label = re.sub(r"[^A-Za-z0-9]", "", text)
    if not label:
        raise InputError(f"{what} {text!r} has no letters or digits to make a BIDS label of; give one.")
    return label


def example_map(role: str, acq: Acquisition) -> str:
    """A --map file's content that picks `acq` for `role`, for the message that asks for one."""
    bruker = acq.sidecar.get("BrukerScan")
    if bruker:
        rule = {"series": bruker["scan"]} | (
            {"package": bruker["slice_package"]} if bruker["slice_packages"] > 1 else {}
        )
    elif acq.sidecar.get("SeriesNumber") is not None:
        rule = {"series": int(acq.sidecar["SeriesNumber"])}
    else:
        rule = {"description": acq.description}
    return json.dumps({"roles": {role: [rule]}})


def _one(values: set[str], option: str, what: str) -> None:
    if len(values) > 1:
        shown = ", ".join(repr(v) for v in sorted(values))
        raise InputError(f"{option} names one {what} but the input holds {len(values)} ({shown}); import them apart.")


def plan_sessions(
    mapped: list[tuple[Acquisition, str, str]], subject: str | None, session: str | None
) -> list[SessionPlan]:
    """Group (acquisition, role, note) into sessions; refuse a role with two candidates, naming them."""
    if subject is not None:
        _one({a.subject for a, _, _ in mapped}, "--subject", "animal")
    if session is not None:
        _one({a.study_date for a, _, _ in mapped}, "--session", "study date")
    groups: dict[tuple[str, str], list[tuple[Acquisition, str, str]]] = defaultdict(list)
    for item in mapped:
        groups[(item[0].subject, item[0].study_date)].append(item)
    labels: dict[str, str] = {}
    plans = []
    for (animal, date), items in sorted(groups.items()):
        sub = bids_label(subject, "--subject") if subject else bids_label(animal or "01", "the animal ID")
        if labels.setdefault(sub, animal) != animal:
            raise InputError(
                f"animal IDs {labels[sub]!r} and {animal!r} both become BIDS subject {sub!r}; import them apart with --subject."
            )
        ses = bids_label(session, "--session") if session else (date or "01")
        plan = SessionPlan(sub, ses, animal, date)
        candidates: dict[str, list[tuple[Acquisition, str]]] = defaultdict(list)
        for acq, role, note in items:
            candidates[role].append((acq, note))
        for role, found in candidates.items():
            if len(found) > 1:
                names = "; ".join(f"{a.name} ({a.plane}, {'x'.join(map(str, a.shape))})" for a, _ in found)
                raise InputError(
                    f"sub-{sub} ses-{ses}: {len(found)} series could be the {role}: {names}. "
                    f"Pick one with a --map rule (by description, series, package or plane), e.g. "
                    f"{example_map(role, found[-1][0])}; nothing was written."
                )
            plan.roles[role] = found[0]
        plans.append(plan)
    seen: dict[tuple[str, str], SessionPlan] = {}
    for plan in plans:
        key = (plan.subject, plan.session)
        if key in seen:
            raise InputError(
                f"two studies of animal {plan.animal_id!r} would both be sub-{plan.subject} ses-{plan.session}; "
                "import them one at a time with --session."
            )
        seen[key] = plan
    return plans
