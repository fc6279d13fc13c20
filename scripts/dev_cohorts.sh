#!/usr/bin/env bash
# The development cohorts of model 2.0 (issue 17), simulated again from their seeds into one folder.
#   bash scripts/dev_cohorts.sh DIR [train|dev|lab|all]
# A session's machine can be a fresh one, with nothing outside the repository kept; the simulator is
# seeded, so these are the same files every time under one simulator version (byte-identical; tests/simulate;
# simulator 2.1 redrew the varied world beyond the liver, 2.2 its tissue contrast and coils, 2.3 its limbs and
# body sizes; docs/simulator.md).
# What each is for:
#   train_study_s101, train_varied_s100   the training cohorts (`train --study A --study B`)
#   train_sagittal_s102                   varied labs made to scan sagittal slices (`simulate --plane sagittal`)
#   dev_study_s501, dev_varied_s500       development scans to choose between models (week 2 of each rat)
#   dev_sagittal_s502                     the same for sagittal labs
#   heldout_dev_s300                      the development lab kept out of training (adaptation curve)
#   heldout_dev_sagittal_s310             a sagittal development lab kept out of training (the same, sagittal)
# The cohorts of record (docs/model.md) are not here: they are simulated once, after every choice.
set -euo pipefail
out="${1:?usage: bash scripts/dev_cohorts.sh DIR [train|dev|lab|all]}"
what="${2:-all}"
cd "$(dirname "$0")/.."
sim() { [ -d "$out/$1" ] || napari-hcc simulate --out "$out/$1" --quiet "${@:2}"; }
mkdir -p "$out"
case "$what" in train | all)
  sim train_study_s101 --protocol study --rats-per-arm 8 --seed 101
  sim train_varied_s100 --protocol varied --rats-per-arm 16 --seed 100
  sim train_sagittal_s102 --protocol varied --plane sagittal --rats-per-arm 8 --seed 102 ;;
esac
case "$what" in dev | all)
  sim dev_study_s501 --protocol study --rats-per-arm 2 --seed 501
  sim dev_varied_s500 --protocol varied --rats-per-arm 2 --seed 500
  sim dev_sagittal_s502 --protocol varied --plane sagittal --rats-per-arm 2 --seed 502 ;;
esac
case "$what" in lab | all)
  sim heldout_dev_s300 --protocol benchmarks/labs/heldout_dev.json --rats-per-arm 3 --seed 300
  sim heldout_dev_sagittal_s310 --protocol benchmarks/labs/heldout_dev_sagittal.json --rats-per-arm 3 --seed 310 ;;
esac
echo "cohorts in $out: $(ls "$out" | tr '\n' ' ')"
