"""What the review widget remembers between clicks: the scan under review, its prediction, the
recovery key, the subject's weekly numbers and the study's reading order. Plain Python (no Qt), so
the widget stays a thin layer of buttons over it.

Where the session needs to know which files the scan in view came from, it is given the T1w layer's
scan metadata (`plugin.layers.layer_scan_meta`: subject, session, file paths), a plain dict."""

from __future__ import annotations

from pathlib import Path

from napari_hcc.io.scan import Scan, ScanRef
from napari_hcc.io.study import find_scans, study_root_of
from napari_hcc.review import recovery
from napari_hcc.review.corrections import study_for_corrections
from napari_hcc.review.queue import ScanSummary, review_order, siblings
from napari_hcc.vocabulary import SEQUENCE_ROLES


class ReviewSession:
    def __init__(self):
        self.engines: dict = {}
        self.scan: Scan | None = None
        self.geometry: dict | None = None
        self.prediction = None
        self.key: str | None = None
        self.recovery_handled = False
        self.summaries: dict[tuple, ScanSummary] = {}
        self.order: list[ScanSummary] | None = None
        self._ranking: list[ScanSummary] | None = None
        self.visited: set[tuple] = set()
        self._keys: dict[tuple, str] = {}

    # -- the scan --------------------------------------------------------------------------------

    def set_scan(self, scan: Scan, geometry: dict, t1w_meta: dict | None = None) -> None:
        same = (
            self.scan is not None
            and (self.scan.subject, self.scan.session) == (scan.subject, scan.session)
            and scan.subject
        )
        self.scan, self.geometry, self.prediction = scan, geometry, None
        new_key = self.key_for(t1w_meta) or recovery.scan_key(arrays=[scan.t1w, scan.t2w, scan.ce])
        if new_key != self.key:
            self.recovery_handled = False
        self.key = new_key
        if not same:
            self.summaries = {k: v for k, v in self.summaries.items() if k[0] == scan.subject and scan.subject}

    @property
    def label(self) -> str:
        return self.scan.label if self.scan is not None else ""

    @property
    def model_id(self) -> str | None:
        return self.prediction.run.model_id if self.prediction is not None else None

    def engine_card(self):
        return next(iter(self.engines.values())).card

    def key_for(self, t1w_meta: dict | None) -> str | None:
        """The recovery key of the scan a T1w layer (its scan metadata) came from (its files' hashes), if it came from files.
        Hashing three volumes is not free and runs on the Qt thread at every Run and scan change, so
        the key is kept per (file, size, modification time)."""
        paths = (t1w_meta or {}).get("paths") or {}
        files = {k: paths[k] for k in SEQUENCE_ROLES if k in paths}
        if len(files) != 3 or not all(Path(p).is_file() for p in files.values()):
            return None
        stamp = tuple((k, str(p), Path(p).stat().st_size, Path(p).stat().st_mtime_ns) for k, p in sorted(files.items()))
        if stamp not in self._keys:
            self._keys[stamp] = recovery.scan_key(files)
        return self._keys[stamp]

    def pending_recovery(self, t1w_meta: dict | None):
        """An unsaved-edits file for the scan in view, unless the reader already dealt with it."""
        key = self.key_for(t1w_meta) or (self.key if self.scan is not None else None)
        if key is None or (self.recovery_handled and key == self.key):
            return None
        return recovery.read_recovery(key)

    # -- its study -------------------------------------------------------------------------------

    def _root_of(self, meta: dict) -> Path | None:
        return study_root_of((meta.get("paths") or {}).get("T1w"), meta.get("subject"))

    def study_root(self) -> Path | None:
        if self.scan is None:
            return None
        return study_root_of(self.scan.paths.get("T1w"), self.scan.subject)

    def corrections_root(self) -> Path | None:

        root = self.study_root()
        return study_for_corrections(root) if root is not None else None

    def study_refs(self, t1w_meta: dict | None = None) -> list[ScanRef]:
        root = self.study_root() or (self._root_of(t1w_meta) if t1w_meta else None)
        return find_scans(root, with_truth=True) if root is not None else []

    def sibling_refs(self) -> list[ScanRef]:
        if self.scan is None or not self.scan.subject or self.study_root() is None:
            return []
        current = ScanRef(self.scan.paths.get("T1w"), None, None, subject=self.scan.subject, session=self.scan.session)
        done = {k[1] for k in self.summaries}
        return [r for r in siblings(self.study_refs(), current) if r.session not in done]

    def add_summary(self, summary: ScanSummary) -> None:
        self.summaries[(summary.ref.subject, summary.ref.session)] = summary
        if self._ranking is not None:
            self._ranking.append(summary)

    def week_rows(self) -> list[tuple[str, float, float]]:
        """(session, volume, response) for the weekly plot; the scan in view uses its own prediction."""
        rows = {
            k: (s.week, k[1] or "", s.tumor_volume_mm3, s.response_probability)
            for k, s in self.summaries.items()
            if self.scan is not None and k[0] == self.scan.subject and s.error is None
        }
        if self.prediction is not None and self.scan is not None:
            rows[(self.scan.subject, self.scan.session)] = (
                self.prediction.week,
                self.scan.session or "",
                self.prediction.tumor_volume_mm3,
                self.prediction.response.response_probability,
            )
        ordered = sorted(rows.values(), key=lambda r: (r[0] is None, r[0] if r[0] is not None else 0, r[1]))
        return [(r[1], r[2], r[3]) for r in ordered]

    # -- the reading order -----------------------------------------------------------------------

    def start_ranking(self, refs: list[ScanRef]) -> None:
        self._ranking = []
        self._expected = len(refs)

    def finish_ranking(self) -> bool:
        """True when every scan was summarised (not cancelled) and the order is ready."""
        ranking, self._ranking = self._ranking, None
        if ranking is None or len(ranking) != self._expected:
            return False
        self.order = review_order(ranking)
        self.visited = set()
        return True

    def _key(self, summary: ScanSummary) -> tuple:
        return (summary.ref.subject, summary.ref.session)

    def next_in_order(self) -> ScanSummary | None:
        """The least certain scan not yet corrected, not yet visited on this walk, not in view."""
        if not self.order:
            return None
        current = (self.scan.subject, self.scan.session) if self.scan is not None else None
        if current is not None:
            self.visited.add(current)
        for s in self.order:
            if self._key(s) not in self.visited and not s.reviewed and s.error is None:
                return s
        return None

    def position_text(self) -> str:
        if not self.order or self.scan is None:
            return ""
        keys = [self._key(s) for s in self.order]
        here = (self.scan.subject, self.scan.session)
        rank = keys.index(here) + 1 if here in keys else 0
        return f"rank {rank} of {len(keys)} by uncertainty"

    def mark_reviewed(self) -> None:
        if self.order is None or self.scan is None:
            return
        for s in self.order:
            if self._key(s) == (self.scan.subject, self.scan.session):
                s.reviewed = True
