"""A copy of a model whose card records the largest liver of its training sessions
(`postprocess.largest_liver_cm3`), so that `predict` can say when a scan is unlike the world the model
learned from (`inference/liver_extent.py`): the anatomy head finding far more liver than any training rat
had.

The volume is read from the simulator's tissue maps (`derivatives/truth/*_desc-tissue_dseg.nii.gz`) of the
studies the card names as its training studies, or of `--study` where those are elsewhere. The network,
readouts and graph weights are unchanged (`model/export.py` `save_with_card`); models are never
overwritten.

    python scripts/card_liver.py --model MODEL --out NEW_MODEL [--study DIR ...] [--version V]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_hcc.io.anatomy_labels import liver_cm3
from napari_hcc.io.study import find_scans
from napari_hcc.model.export import save_with_card
from napari_hcc.model.loading import load_model


def largest_liver(studies: list[Path]) -> tuple[float, int]:
    """(the largest liver in cm^3, the number of sessions with a tissue map) over these studies."""
    volumes = [
        v
        for study in studies
        for ref in find_scans(study, with_truth=True)
        if ref.subject and ref.session and (v := liver_cm3(study, ref.subject, ref.session)) is not None
    ]
    if not volumes:
        raise SystemExit(f"no session of {', '.join(map(str, studies))} has a tissue map.")
    return max(volumes), len(volumes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a model with an anatomy head")
    ap.add_argument("--out", required=True, type=Path, help="a new model folder")
    ap.add_argument("--study", type=Path, action="append", help="the training studies (default: the card's)")
    ap.add_argument("--version", help="the new model's version (default: the model's)")
    args = ap.parse_args()

    source = load_model(args.model)
    if not source.card.architecture.get("anatomy"):
        raise SystemExit(f"{source.model_id} has no anatomy head, so it finds no liver to compare.")
    studies = args.study or [Path(s) for s in source.card.training.get("studies", [])]
    largest, sessions = largest_liver(studies)
    card = source.card.for_new_model(args.version, "the largest training liver recorded (scripts/card_liver.py)")
    card.postprocess = {**card.postprocess, "largest_liver_cm3": round(largest, 2)}
    entry = save_with_card(source, card, args.out)
    print(f"model {args.out}: largest training liver {largest:.2f} cm^3 over {sessions} sessions; "
          f"graph: {'yes' if entry else 'none'}")  # fmt: skip


if __name__ == "__main__":
    main()
