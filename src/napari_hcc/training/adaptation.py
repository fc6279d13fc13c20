"""The adaptation setting: fine-tuning on a few corrected scans of one lab (`train --init M
--corrections-only` and the review widget's "Improve the model"). A plain dict, no torch, so that the
widget can show it without importing the training stack on the Qt thread.

A fixed number of optimiser steps, however few the scans (their slices go round again inside the
epoch), the encoder frozen, every corrected scan learned from (no validation rats; the last epoch is
kept). Chosen by `benchmarks/adaptation_curve.py` on a held-out development lab (docs/training.md,
"Adapting to a lab"). Contrast randomisation (`training/augment.py`, `p_contrast`) is off here: adapting
means learning this lab's contrast, and the curve was measured without it.
"""

ADAPTATION = {
    "epochs": 1,
    "lr": 3e-4,
    "min_steps": 40,
    "freeze_encoder": True,
    "val_fraction": 0.0,
    "p_contrast": 0.0,
}
