"""The treatment-response panel: what the model says about one scan, and the subject's weekly course.

Arm probabilities as bars, the response probability (1 - P(Control)) against a threshold, the
viability and apoptosis estimates, tumor volume and longest diameter (re-measured when the mask is
edited), the uncertainty, the model, a per-slice plot and a weekly plot (matplotlib in Qt).
"""

from __future__ import annotations

import numpy as np
from napari.utils.theme import get_theme
from qtpy.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from napari_hcc.gui.offthread_plot import PlotView
from napari_hcc.inference.prediction import BASELINE_NOTE
from napari_hcc.inference.subsets import MISSING_SEQUENCE

ARM_NAMES = {"Control": "Control", "Sorafenib": "Sorafenib", "NK": "NK cells", "Combination": "Combination"}


def _fmt(value: float, spec: str = ".2f", unit: str = "") -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:{spec}}{unit}"


def theme_colors(theme_name: str | None) -> dict:
    """Background and text colours of a napari theme (light defaults outside napari)."""
    try:
        theme = get_theme(theme_name or "dark")
        return {"background": theme.foreground.as_hex(), "text": theme.text.as_hex(), "warning": theme.warning.as_hex()}
    except Exception:  # noqa: BLE001 - any theme problem: plain colours
        return {"background": "#ffffff", "text": "#222222", "warning": "#d97706"}


class ResponsePanel(QWidget):
    def __init__(self, colors: dict | None = None, parent=None):
        super().__init__(parent)
        colors = colors or theme_colors(None)
        self.prediction = None
        self.weeks: list = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

        self.model_label = QLabel("no result yet: press Run")
        self.model_label.setWordWrap(True)
        layout.addWidget(self.model_label)

        self.baseline_label = QLabel(
            "<b>Baseline scan (week 0), before treatment:</b> no image can show the arm yet; the arm "
            "probabilities and the response below are not a reading of treatment. The mask and its size are."
        )
        self.baseline_label.setWordWrap(True)
        self.baseline_label.setStyleSheet(f"color: {colors.get('warning', '#d97706')};")
        self.baseline_label.setVisible(False)
        layout.addWidget(self.baseline_label)

        bars = QGridLayout()
        self.arm_bars: dict[str, QProgressBar] = {}
        self.arm_labels: dict[str, QLabel] = {}
        for row, arm in enumerate(ARM_NAMES):
            name = QLabel(ARM_NAMES[arm])
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setFormat("–")
            bar.setTextVisible(True)
            bars.addWidget(name, row, 0)
            bars.addWidget(bar, row, 1)
            self.arm_bars[arm], self.arm_labels[arm] = bar, name
        layout.addLayout(bars)

        form = QFormLayout()
        self.response_label = QLabel("–")
        self.response_label.setWordWrap(True)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.05, 0.95)
        self.threshold.setSingleStep(0.05)
        self.threshold.setValue(0.5)
        self.threshold.setToolTip("the response probability at or above which the scan reads as a responder")
        self.threshold.valueChanged.connect(lambda _v: self._show_response())
        form.addRow("Response", self.response_label)
        form.addRow("Responder if ≥", self.threshold)
        self.viability_label = QLabel("–")
        self.apoptosis_label = QLabel("–")
        self.volume_label = QLabel("–")
        self.diameter_label = QLabel("–")
        self.uncertainty_label = QLabel("–")
        self.uncertainty_label.setWordWrap(True)
        form.addRow("Viability (H&&E)", self.viability_label)
        form.addRow("Apoptosis (TUNEL)", self.apoptosis_label)
        form.addRow("Tumor volume", self.volume_label)
        form.addRow("Longest diameter", self.diameter_label)
        form.addRow("Uncertainty", self.uncertainty_label)
        layout.addLayout(form)

        self.slice_plot = PlotView(colors)
        self.week_plot = PlotView(colors)
        layout.addWidget(QLabel("Per slice: tumor probability and area"))
        layout.addWidget(self.slice_plot)
        self.week_title = QLabel("Weekly course: tumor volume and response")
        layout.addWidget(self.week_title)
        layout.addWidget(self.week_plot)

    # -- one scan --------------------------------------------------------------------------------

    def show_prediction(self, prediction, model_text: str) -> None:
        self.show_response_reading(prediction, model_text)
        self.show_measurements(prediction.tumor_volume_mm3, prediction.longest_diameter_mm, edited=False)
        # a TTA spread of the arms exists only for the network's heads; the readout reads the one final mask
        spread = (
            ", ".join(f"{a} ±{u:.2f}" for a, u in zip(prediction.response.arms, prediction.response.arm_uncertainty))
            if prediction.run.tta and prediction.response.source == "network"
            else ""
        )
        self.uncertainty_label.setText(
            f"{prediction.uncertainty:.3f} ({prediction.uncertainty_method})" + (f"; arms {spread}" if spread else "")
        )
        self._plot_slices(prediction)

    def show_response_reading(self, prediction, model_text: str) -> None:
        """Arms, response and histology (not the measurements or plots). While the rat's earlier sessions
        are still being read (`response_pending`) the bars are greyed and no number is shown."""
        self.prediction = prediction
        self.model_label.setText(model_text)
        self.baseline_label.setVisible(prediction.before_treatment)
        pending = prediction.response.pending
        for bar in self.arm_bars.values():
            bar.setEnabled(not prediction.before_treatment and not pending)
        best = prediction.response.predicted_arm
        for arm, bar in self.arm_bars.items():
            p = prediction.response.arm_probability.get(arm, float("nan"))
            bar.setValue(0 if pending or not np.isfinite(p) else int(round(1000 * p)))
            bar.setFormat("…" if pending else f"{100 * p:.1f} %" if np.isfinite(p) else "not read")
            font = self.arm_labels[arm].font()
            font.setBold(arm == best and not pending)
            self.arm_labels[arm].setFont(font)
        self._show_response()
        waiting = "reading the rat's earlier sessions…"
        self.viability_label.setText(
            waiting if pending else _fmt(prediction.response.viability, ".2f") + " viable fraction"
        )
        self.apoptosis_label.setText(
            waiting if pending else _fmt(prediction.response.apoptosis, ".3f") + " apoptotic fraction"
        )

    def _show_response(self) -> None:
        if self.prediction is None:
            return
        if self.prediction.response.pending:
            self.response_label.setText("reading the rat's earlier sessions…")
            return
        r = self.prediction.response.response_probability
        if not np.isfinite(r):
            self.response_label.setText(f"not read: {self.prediction.response.unread_because or MISSING_SEQUENCE}")
            return
        verdict = "responder" if r >= self.threshold.value() else "non-responder"
        if self.prediction.before_treatment:
            verdict = "baseline, before treatment: not a response reading"
        self.response_label.setText(f"1 − P(Control) = <b>{r:.2f}</b>: {verdict}")

    def show_measurements(self, volume_mm3: float, diameter_mm: float, edited: bool) -> None:
        tag = " (edited)" if edited else ""
        self.volume_label.setText(_fmt(volume_mm3, ".1f", " mm³") + tag)
        self.diameter_label.setText(_fmt(diameter_mm, ".1f", " mm") + tag)

    def _plot_slices(self, p) -> None:
        """Tumor area (bars) and highest tumor probability (line) per slice, drawn off the Qt thread."""
        area = np.array(p.slices.tumor_area_mm2, copy=True)
        prob = np.array(p.slices.tumor_probability, copy=True)

        def draw(ax, ax2):
            k = np.arange(len(prob))
            ax.bar(k, area, color="#7fa6e0", alpha=0.7)
            ax.set_ylabel("area mm²", fontsize=7, color="#7fa6e0")
            ax.set_xlabel("slice (inferior → superior)", fontsize=7)
            ax2.plot(k, prob, color="#dd8452", marker=".", lw=1)
            ax2.set_ylim(0, 1.02)
            ax2.set_ylabel("max P(tumor)", fontsize=7, color="#dd8452")

        self.slice_plot.show_plot(draw)

    # -- the subject's weeks ---------------------------------------------------------------------

    def set_weeks(self, rows: list[tuple[str, float, float]]) -> None:
        """rows: (session label, tumor volume mm3, response probability), in week order."""
        self.weeks = rows = list(rows)
        if len(rows) < 2:
            self.week_title.setText("Weekly course: one session only")
            self.week_plot.show_plot(lambda ax, ax2: None)
            return
        self.week_title.setText(f"Weekly course: {len(rows)} sessions")

        def draw(ax, ax2):
            x = np.arange(len(rows))
            ax.plot(x, [r[1] for r in rows], color="#7fa6e0", marker="o", lw=1.2)
            ax.set_ylabel("volume mm³", fontsize=7, color="#7fa6e0")
            ax2.plot(x, [r[2] for r in rows], color="#c44e52", marker="s", lw=1.2)
            ax2.set_ylim(0, 1.02)
            ax2.set_ylabel("P(response)", fontsize=7, color="#c44e52")
            ax.set_xticks(x, [r[0] for r in rows])

        self.week_plot.show_plot(draw)


def model_line(card, prediction) -> str:
    """The panel's model line: which model on which device, how long, and where arms and histology come from."""
    run = prediction.run
    earlier = run.timings.get("earlier_sessions", 0.0)
    seconds = f"{run.timings['total'] - earlier:.2f} s" + (
        f" (+ {earlier:.2f} s reading earlier sessions)" if earlier else ""
    )
    source = "the tumor-feature readout" if prediction.response.source == "readout" else "the network's heads"
    if prediction.response.mask_source == "edited":
        source += " of your edited mask"
    reading = f"arms and histology from {source}"
    if not prediction.response.predicted_arm:
        reading = f"arms and histology not read: {prediction.response.unread_because or MISSING_SEQUENCE}"
    return f"Model {card.name} {card.version} ({run.model_id}) on {run.device} ({run.backend}), {run.precision}: {seconds}; {reading}"


def reading_line(label: str, prediction) -> str:
    """The status line after a prediction: the reading, the tumor's volume and the notes. At baseline the
    panel's warning says why the arms mean nothing, so the line does not name one."""
    if prediction.before_treatment:
        reading = "baseline scan (week 0, before treatment)"
    elif prediction.response.pending:
        reading = "reading the response beside the rat's earlier sessions…"
    elif not prediction.response.predicted_arm:
        reading = f"response not read ({prediction.response.unread_because or MISSING_SEQUENCE})"
    else:
        reading = f"{prediction.response.predicted_arm} most likely"
    notes = "; ".join(n.rstrip(".") for n in prediction.notes + prediction.run.events if n != BASELINE_NOTE)
    return f"{label}: {reading}; tumor {prediction.tumor_volume_mm3:.0f} mm³." + (f" Notes: {notes}." if notes else "")
