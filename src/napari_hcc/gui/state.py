"""The review widget's evented state: the panels subscribe to it instead of being refreshed by hand.

One `ReviewState` per HCC Review widget. Setting a field emits its event (psygnal), and every panel that
shows that field is connected to it: the response panel to `prediction` and `week_rows`, the run panel
to `busy` and `status`, the fine-tuning panel to `busy` and reads `model_spec` and `device` when it
starts. No Qt here; the panels are the Qt side.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

from psygnal import evented


# a Prediction holds numpy arrays, whose `==` is element-wise: identity says whether it changed
@evented(equality_operators={"prediction": operator.is_})
@dataclass
class ReviewState:
    #: the prediction of the scan in view (its response may still be pending); None before Run
    prediction: Any = None
    #: (session, tumor volume, response) of the rat's sessions, for the weekly plot
    week_rows: tuple = ()
    #: a worker runs (Run or the study walk): Run and Next are disabled, Cancel enabled
    busy: bool = False
    #: the line under the progress bar
    status: str = "Open a scan (File > Open Sample > napari-hcc) and press Run."
    #: the model to run: None is the shipped default, else a folder or a .safetensors file
    model_spec: str | None = None
    #: the device the reader chose (auto, cuda, mps, cpu)
    device: str = "auto"
    #: what runs the network (auto, torch, openvino, onnxruntime; inference/backend_choice.py)
    backend: str = "auto"

    @property
    def compute(self) -> tuple:
        """(model, device, backend): what the workers need to make or find the engine."""
        return self.model_spec, self.device, self.backend
