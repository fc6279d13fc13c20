"""The "Correct the mask" panel of HCC Review: the editing helpers beside napari's brush, eraser and
fill (each one undo step), the annotator's name, Save correction and Next scan. The buttons call the
widget's actions; the panel only lays them out and says what the last helper changed."""

from __future__ import annotations

from qtpy.QtWidgets import QDoubleSpinBox, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QVBoxLayout

from napari_hcc.gui.run_panel import button


class EditPanel(QGroupBox):
    def __init__(self, actions, keys: dict[str, str], parent=None):
        """actions: the widget, whose interpolate, remove_islands, fill_holes, keep_left_out, reread_response,
        save_correction and next_scan the buttons call; keys: the keyboard shortcuts shown on Save and Next."""
        super().__init__("Correct the mask (napari's brush, eraser and fill, plus:)", parent)
        el = QVBoxLayout(self)
        er = QHBoxLayout()
        er.addWidget(
            button("Interpolate", actions.interpolate, "fill the slices between the last two slices you edited")
        )
        self.island_mm3 = QDoubleSpinBox()
        self.island_mm3.setRange(0.1, 1000.0)
        self.island_mm3.setValue(1.0)
        self.island_mm3.setSuffix(" mm³")
        er.addWidget(button("Remove islands <", actions.remove_islands))
        er.addWidget(self.island_mm3)
        er.addWidget(button("Fill holes", actions.fill_holes))
        el.addLayout(er)
        self.keep_button = button(
            "Keep what was left out (cyan)",
            actions.keep_left_out,
            "add to the tumor what the network called tumor and the anatomy gate left out as off the liver",
        )
        self.keep_button.setEnabled(False)  # until a prediction leaves something out
        el.addWidget(self.keep_button)
        self.reread_button = button(
            "Read the response from this mask",
            actions.reread_response,
            "read the arms and histology again from the tumor layer as you corrected it",
        )
        el.addWidget(self.reread_button)
        self.edit_label = QLabel("Each helper is one undo step (Ctrl+Z).")
        self.edit_label.setWordWrap(True)
        el.addWidget(self.edit_label)
        sr = QHBoxLayout()
        self.annotator = QLineEdit()
        self.annotator.setPlaceholderText("annotator (default: your user name)")
        sr.addWidget(self.annotator, 1)
        self.save_button = button(
            f"Save correction ({keys['save_correction']})",
            actions.save_correction,
            "write the mask into the study's training set as a new version",
        )
        sr.addWidget(self.save_button)
        el.addLayout(sr)
        self.next_button = button(f"Next scan, least certain first ({keys['next_scan']})", actions.next_scan)
        el.addWidget(self.next_button)

    def said(self, helper: str, changed: int) -> None:
        self.edit_label.setText(f"{helper.replace('_', ' ')}: {changed} voxels changed (Ctrl+Z undoes it).")
