"""A copy of a model whose card carries a chosen anatomy gate (the least liver share around a tumor).

`train` writes the gate at its default share (0.1) when the validation liver Dice allows it; the share a
model ships with is chosen on development scans (`benchmarks/anatomy_gate.py`), and this writes it into
a new folder, with where it was chosen: the same network and readout tensors, the card's
`postprocess.min_liver_share` set, and the graph given these weights (`model/export.py`). Models are
never overwritten. `predict --liver-gate` still overrides it per run.

    python benchmarks/anatomy_gate.py --model MODEL --study DEV ... --shares 0 0.1 0.4 --out EVAL
    python scripts/card_gate.py --model MODEL --share 0.4 --chosen-on "EVAL: ..." --out NEW_MODEL
"""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_hcc.inference.postprocess import PostProcess
from napari_hcc.model.export import save_with_card
from napari_hcc.model.loading import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a model with an anatomy head")
    ap.add_argument("--share", required=True, type=float, help="the least liver share, 0-1 (0 turns the gate off)")
    ap.add_argument("--chosen-on", required=True, help="the development scans and figures it was chosen on")
    ap.add_argument("--out", required=True, type=Path, help="a new model folder")
    ap.add_argument("--version", help="the new model's version (default: the model's)")
    args = ap.parse_args()

    source = load_model(args.model)
    if not source.card.architecture.get("anatomy"):
        raise SystemExit(f"{source.model_id} has no anatomy head, so it has no gate to set.")
    card = source.card.for_new_model(args.version)
    card.postprocess = {**card.postprocess, "min_liver_share": args.share}
    PostProcess.from_card(card)  # the share is checked there (0-1)
    card.metrics = {**card.metrics, "liver_gate_chosen_on": args.chosen_on}
    entry = save_with_card(source, card, args.out)
    print(f"model {args.out}: anatomy gate {args.share}; graph: {'yes' if entry else 'none'}")


if __name__ == "__main__":
    main()
