"""A copy of a model whose card lists its measured Dice per sequence subset, from an `evaluate --subsets`
report of that model, so that `predict` can say what reading a scan without some sequences costs.

Models are never overwritten, so the card's figures go into a new folder: the same network and readout
tensors, the card's `metrics.subsets` set from the report's `segmentation.by_subset`, with the study and
report it came from, and the graph given these weights (`model/export.py`).

    napari-hcc evaluate --study FRESH --model MODEL --subsets --out REPORT
    python scripts/card_subsets.py --model MODEL --report REPORT --out NEW_MODEL [--version V]
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

from napari_hcc.model.export import save_with_card
from napari_hcc.model.loading import load_model


def subset_metrics(report: dict) -> dict:
    """{subset: {dice, dice_all_sequences, scans, rats}} from a report's metrics.json, rounded."""
    rows = report["summary"]["segmentation"].get("by_subset") or {}
    if not rows:
        raise SystemExit("the report has no figures per sequence subset: run evaluate with --subsets.")
    return {
        name: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()} for name, row in rows.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="the model the report evaluated")
    ap.add_argument("--report", required=True, type=Path, help="an evaluate --subsets output folder")
    ap.add_argument("--out", required=True, type=Path, help="a new model folder")
    ap.add_argument("--version", help="the new model's version (default: the model's)")
    args = ap.parse_args()

    source = load_model(args.model)
    report = json.loads((args.report / "metrics.json").read_text(encoding="utf-8"))
    evaluated = str(report["info"].get("model", "")).split("+")[0]
    if evaluated != f"{source.card.name}@{source.card.version}":
        raise SystemExit(f"{args.report} evaluated {evaluated}, not {source.card.name}@{source.card.version}.")
    card = copy.deepcopy(source.card)
    card.metrics = {
        **card.metrics,
        "subsets": subset_metrics(report),
        "subsets_measured_on": {"study": report["info"]["study"], "report": str(args.report), "model": evaluated},
    }
    card.version, card.created = args.version or card.version, None
    entry = save_with_card(source, card, args.out)
    print(f"model {args.out}: Dice per subset from {args.report}; graph: {'yes' if entry else 'none'}")
    for name, row in card.metrics["subsets"].items():
        print(
            f"  {name}: {row['dice']:.3f} on {row['scans']} scans (all their sequences: {row['dice_all_sequences']:.3f})"
        )


if __name__ == "__main__":
    main()
