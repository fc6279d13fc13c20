"""A rat's earlier sessions: what the response readout reads beside the scan itself.

A radiologist judges response against the rat's earlier scans, and so does the readout: the arm is read
from this scan and the rat's earlier treated scans together, and apoptosis from the tumor's estimated
composition now, at baseline and on average in between (readout/stored.py). The earlier sessions
are found in the scan's BIDS study by the subject's `sessions.tsv` weeks (else `wkN` labels); a scan
outside a study, or one with no earlier session, is read alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_hcc.errors import InputError
from napari_hcc.io.scan import ScanRef
from napari_hcc.io.study import bids_session, is_bids_session, session_weeks, study_root_of, week_in


@dataclass
class RatHistory:
    """The features of a rat's sessions before this scan (FEATURE_NAMES vectors on the network's masks)."""

    week: int | None = None  # this scan's week (0 = baseline, before treatment); None when unknown
    baseline: np.ndarray | None = None  # the week-0 session, when it is not this scan
    earlier: list[np.ndarray] = field(default_factory=list)  # treated sessions before this one, oldest first
    sessions: list[str] = field(default_factory=list)  # the labels of the sessions read, for the record

    @property
    def treated(self) -> bool:
        return self.week is not None and self.week > 0


def earlier_sessions(t1w: str | Path | None, subject: str | None, session: str | None) -> list[tuple[int, ScanRef]]:
    """(week, scan) of the subject's other sessions in its BIDS study with a week before this scan's,
    oldest first; empty outside a study or when this scan's week is unknown."""
    root = study_root_of(t1w, subject)
    if root is None or not session:
        return []
    weeks = session_weeks(root, subject)  # the subject's sessions.tsv, read once
    week = week_in(weeks, session)
    if week is None:
        return []
    found = []
    for ses_dir in sorted((root / f"sub-{subject}").glob("ses-*")):
        label = ses_dir.name[4:]
        if label == session or not is_bids_session(ses_dir):
            continue
        w = week_in(weeks, label)
        if w is None or w >= week:
            continue
        try:
            found.append((w, bids_session(ses_dir, with_truth=False)))
        except InputError:  # an incomplete session: read without it
            continue
    return sorted(found, key=lambda item: item[0])


def history_of(week: int | None, earlier: list[tuple[int, str, np.ndarray | None]]) -> RatHistory:
    """A RatHistory from (week, session label, features or None when no tumor was found) of the earlier
    sessions; sessions without a tumor are left out."""
    history = RatHistory(week=week)
    for w, label, features in sorted(earlier, key=lambda item: item[0]):
        if features is None or week is None or w >= week:
            continue
        if w == 0:
            history.baseline = features
        else:
            history.earlier.append(features)
        history.sessions.append(label)
    return history
