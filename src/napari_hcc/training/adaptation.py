"""The adaptation setting: fine-tuning on a few corrected scans of one lab (`train --init M
--corrections-only` and the review widget's "Improve the model"). A plain dict, no torch, so that the
widget can show it without importing the training stack on the Qt thread.

A fixed number of optimiser steps, however few the scans (their slices go round again inside the
epoch), every corrected scan learned from (no validation rats; the last epoch is kept), and, so that
one or two scans move the network only a little:

* the encoder frozen (its weights and BatchNorm statistics);
* every BatchNorm layer keeps its running statistics (`freeze_norm`): a few scans' batches would
  otherwise replace the statistics the decoder and heads were trained with;
* no sequence dropout: the lab's sessions are shown with the sequences they have;
* a low peak learning rate, 1e-4.

Chosen for model 2.0 by `benchmarks/adaptation_curve.py --draws 3` on a held-out development lab
(docs/training.md, "Adapting to a lab", 2026-12-03): of five settings, this one had the best mean Dice
from one and from two corrected scans and no draw of two scans below the unadapted model; the setting
before it (lr 1e-3, BatchNorm and sequence dropout as in training; chosen on model 1.4.0, which had no
anatomy head) made model 2.0 worse. Contrast randomisation (`training/augment.py`, `p_contrast`) is
off: adapting means learning this lab's contrast. The corrected scans can also choose which of the lab's
sequences the new model reads (`training/sequence_choice.py`, `train --choose-sequences`); not by default.
"""

ADAPTATION = {
    "epochs": 1,
    "lr": 1e-4,
    "warmup_epochs": 0.5,  # the rate rises over the first half of the steps, then decays
    "min_steps": 40,
    "freeze_encoder": True,
    "freeze_norm": True,
    "sequence_dropout": 0.0,
    "val_fraction": 0.0,
    "p_contrast": 0.0,
    #: the corrected scans choose the sequences read (training/sequence_choice.py): off, opt-in with
    #: `train --choose-sequences`; it helps the unadapted reading, but with the fine-tuning after it the
    #: development labs lost on average (docs/training.md, "The lab's sequences")
    "choose_sequences": False,
}
