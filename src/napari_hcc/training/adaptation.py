"""The adaptation setting: fine-tuning on a few corrected scans of one lab (`train --init M
--corrections-only` and the review widget's "Improve the model"). A plain dict, no torch, so that the
widget can show it without importing the training stack on the Qt thread.

A fixed number of optimiser steps, however few the scans (their slices go round again inside the
epoch), the encoder frozen, every corrected scan learned from (no validation rats; the last epoch is
kept). Chosen by `benchmarks/adaptation_curve.py` on a held-out development lab (docs/training.md,
"Adapting to a lab"): with the encoder frozen, lr 1e-3 adapted model 1.4.0 better than 3e-4 and 3e-3
from 1, 2, 4 and 8 corrected scans (2026-12-01). Contrast randomisation (`training/augment.py`, `p_contrast`) is off here: adapting
means learning this lab's contrast, and the curve was measured without it.
"""

ADAPTATION = {
    "epochs": 1,
    "lr": 1e-3,
    "warmup_epochs": 0.5,  # the rate rises over the first half of the steps, then decays
    "min_steps": 40,
    "freeze_encoder": True,
    "val_fraction": 0.0,
    "p_contrast": 0.0,
}
