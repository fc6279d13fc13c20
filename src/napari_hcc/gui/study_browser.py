"""Study browser: list the scans of a study (BIDS, the original layout, or a DICOM folder or ParaVision
study, imported first as `napari-hcc import` does) and open one."""

from __future__ import annotations

import threading
from pathlib import Path

from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_hcc.errors import InputError
from napari_hcc.gui import worker_lifecycle
from napari_hcc.gui.messages import UpdateKind
from napari_hcc.gui.scan_layers import show_scan, show_week
from napari_hcc.gui.workers import aligned_weeks
from napari_hcc.importing.scanner_folders import imported_study, is_scanner_input
from napari_hcc.io.scan import Scan, ScanRef
from napari_hcc.io.study import find_scans
from napari_hcc.io.user_paths import sample_study

COLUMNS = ("subject", "session", "arm", "mask")


class StudyBrowser(QWidget):
    """Pick a study folder; double-click a scan (or press Open) to show it in the viewer."""

    def __init__(self, napari_viewer, study: str | Path | None = None):
        super().__init__()
        self.viewer = napari_viewer
        self.refs: list[ScanRef] = []
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("study folder (BIDS or <Arm>/<Animal>/)")
        self.path_edit.returnPressed.connect(lambda: self.set_study(self.path_edit.text()))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        top = QHBoxLayout()
        top.addWidget(self.path_edit)
        top.addWidget(browse)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels([c.capitalize() for c in COLUMNS])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.cellDoubleClicked.connect(lambda row, _col: self.open_row(row))
        self.open_button = QPushButton("Open scan")
        self.open_button.clicked.connect(lambda: self.open_row(self.table.currentRow()))
        self.weeks_button = QPushButton("Open with the rat's other weeks, aligned")
        self.weeks_button.setToolTip(
            "registers each other session's T1w (and mask) to this one (rigid, mutual information) and adds them "
            "as hidden layers on its grid: toggle them to compare the weeks voxel by voxel"
        )
        self.weeks_button.clicked.connect(lambda: self.open_weeks(self.table.currentRow()))
        self.worker = None
        self.cancel_event = threading.Event()
        worker_lifecycle.cancel_when_destroyed(self, self.cancel_event)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table)
        layout.addWidget(self.open_button)
        layout.addWidget(self.weeks_button)
        layout.addWidget(self.status)
        if study is None:
            study = sample_study()
        self.set_study(study)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a study folder")
        if folder:
            self.set_study(folder)

    def set_study(self, path: str | Path) -> None:
        self.path_edit.setText(str(path))
        try:
            if is_scanner_input(Path(path)):
                path = imported_study(path)
                show_info(f"napari-hcc: imported into the BIDS study {path}")
            self.refs = find_scans(path)
        except InputError as exc:
            self.refs = []
            self._error(str(exc))
        self.table.setRowCount(len(self.refs))
        for row, ref in enumerate(self.refs):
            values = (ref.subject or "", ref.session or "", ref.arm or "", "yes" if ref.mask else "")
            for col, value in enumerate(values):
                self.table.setItem(row, col, QTableWidgetItem(value))
        if self.refs:
            self.table.selectRow(0)
            self.status.setText(f"{len(self.refs)} scans")

    def open_row(self, row: int) -> list:
        opened = self._open(row)
        return opened[1] if opened else []

    def _open(self, row: int) -> tuple[Scan, list] | None:
        """Load a row's scan and show it: (the scan, its layers), or None when it cannot be opened."""
        if not 0 <= row < len(self.refs):
            return None
        try:
            scan = self.refs[row].load()
        except InputError as exc:
            self._error(str(exc))
            return None
        layers = show_scan(self.viewer, scan)
        self.table.selectRow(row)
        self.status.setText(" ".join([scan.label] + scan.notes))
        if scan.notes:
            show_info("napari-hcc: " + " ".join(scan.notes))
        return scan, layers

    def open_weeks(self, row: int) -> None:
        """Open a session, then add the rat's other sessions aligned to it (in the background)."""
        opened = self._open(row)
        if not opened or not opened[1] or self.worker is not None:
            return
        reference, ref = opened[0], self.refs[row]
        others = [r for r in self.refs if r.subject == ref.subject and r.session != ref.session and r.subject]
        if not others:
            self.status.setText(f"{ref.subject or 'this scan'} has no other sessions in this study.")
            return
        self.cancel_event.clear()
        self.worker = create_worker(aligned_weeks, reference, others, self.cancel_event)
        self.worker.yielded.connect(lambda update: self._on_week(reference, update))
        self.worker.errored.connect(lambda exc: self._error(str(exc)))
        self.worker.finished.connect(lambda: setattr(self, "worker", None))
        self.status.setText(f"aligning {len(others)} other session(s) of sub-{ref.subject} to ses-{ref.session}…")
        worker_lifecycle.start(self.worker, self.cancel_event)

    def _on_week(self, reference, update) -> None:
        if update.kind is UpdateKind.WEEK:
            show_week(self.viewer, reference, update.value)
        elif update.kind is UpdateKind.STATUS:
            self.status.setText(update.value)

    def open_scan(self, subject: str, session: str) -> list:
        for row, ref in enumerate(self.refs):
            if ref.subject == subject and ref.session == session:
                return self.open_row(row)
        raise InputError(f"the study has no scan sub-{subject} ses-{session}.")

    def _error(self, message: str) -> None:
        self.status.setText(message)
        show_error(message)
