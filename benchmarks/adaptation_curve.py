"""The adaptation curve under several fine-tuning settings, to choose the adaptation setting
(`training/adaptation.py`); `napari-hcc evaluate --adapt` reports the curve of the product's setting.

    python benchmarks/adaptation_curve.py --model MODEL --lab STUDY --out DIR [--counts 0 1 2 4 8]
        [--setting NAME:lr=1e-3,steps=40,freeze=1,contrast=0 ...]   (default: the adaptation setting)
        [--draws K]   (each count fine-tuned K times from different corrected scans; the table gives the mean)

STUDY is a simulated study of one lab (e.g. `napari-hcc simulate --protocol benchmarks/labs/heldout_dev.json`).
The test rats, the corrected scans and the fine-tuning are `evaluation/adaptation_curve.py`'s; each
setting fine-tunes from the same scans. Writes DIR/adaptation.csv and DIR/adaptation.md.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

import torch

from napari_hcc.evaluation.adaptation_curve import adaptation_curve
from napari_hcc.evaluation.report import beyond_lab_sentence
from napari_hcc.training.augment import AugmentConfig
from napari_hcc.training.config import adaptation_kwargs


def parse_setting(text: str) -> tuple[str, dict]:
    """NAME:lr=..,steps=..,freeze=0|1,norm=0|1,dropout=..,epochs=..,contrast=..,choose=0|1; what is not given
    is the adaptation setting's (norm=1: every BatchNorm keeps its statistics; dropout: the sequence dropout;
    choose=1: the corrected scans choose the sequences read, training/sequence_choice.py)."""
    name, _, spec = text.partition(":")
    values = dict(item.split("=") for item in spec.split(",") if item)
    base = adaptation_kwargs()
    return name, {
        **base,
        "lr": float(values.get("lr", base["lr"])),
        "min_steps": int(values.get("steps", base["min_steps"])),
        "freeze_encoder": values.get("freeze", "1" if base["freeze_encoder"] else "0") == "1",
        "freeze_norm": values.get("norm", "1" if base.get("freeze_norm") else "0") == "1",
        "sequence_dropout": float(values["dropout"]) if "dropout" in values else base.get("sequence_dropout"),
        "epochs": int(values.get("epochs", base["epochs"])),
        "augment": AugmentConfig(p_contrast=float(values.get("contrast", base["augment"].p_contrast))),
        "choose_sequences": values.get("choose", "1" if base["choose_sequences"] else "0") == "1",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--lab", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--setting", action="append", default=None, help="NAME:lr=..,steps=..,freeze=0|1,epochs=..")
    ap.add_argument("--draws", type=int, default=1, help="fine-tunings per count, each from other corrected scans")
    args = ap.parse_args()
    settings = dict(parse_setting(s) for s in (args.setting or ["adaptation:"]))
    torch.set_num_threads(max(1, torch.get_num_threads()))
    args.out.mkdir(parents=True, exist_ok=True)

    def show(p) -> None:
        d = p.detail
        print(f"{p.done}/{p.total} {d['setting']} n={d['corrected_scans']} draw {d['draw']}: "
              f"Dice {d['dice']:.3f}, {d['seconds']:.0f} s", flush=True)  # fmt: skip

    curve = adaptation_curve(
        args.lab, args.model, args.counts, settings, scratch=args.out, progress=show, draws=args.draws
    )
    rows = curve["points"]
    with open(args.out / "adaptation.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = [
        f"Model `{curve['model']}` on `{args.lab.name}`: {curve['test_scans']} test scans of "
        f"{len(curve['test_rats'])} rats; corrected scans {', '.join(curve['corrected_from'])}.",
        "",
        "| setting | corrected scans | mean Dice (over draws) | each draw | sequences read | fine-tuning (s) |",
        "|---|---|---|---|---|---|",
    ]
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault((r["setting"], r["corrected_scans"]), []).append(r)
    for (setting, n), group in groups.items():
        scores = [r["dice"] for r in group]
        each = ", ".join(f"{v:.3f}" for v in scores) if len(scores) > 1 else ""
        seconds = statistics.median(r["seconds"] for r in group)
        reads = ", ".join(r.get("read") or "all" for r in group)
        lines.append(f"| {setting} | {n} | {statistics.mean(scores):.3f} | {each} | {reads} | {seconds:.0f} |")
    timed = [r["seconds"] for r in rows if r["corrected_scans"] == 1]
    if timed:
        lines += ["", f"One corrected scan: median fine-tuning {statistics.median(timed):.0f} s on this machine."]
    if curve["beyond_lab"]:
        lines += ["", beyond_lab_sentence(curve)]
    (args.out / "adaptation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
