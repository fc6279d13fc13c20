"""The evaluation report: Markdown with PNG plots (matplotlib, Agg), written by `napari-hcc evaluate`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import roc_curve

from napari_hcc.evaluation.scoring import arm_scored
from napari_hcc.io.atomic import atomic_path, write_text
from napari_hcc.vocabulary import ARMS


def _f(v, digits: int = 3) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def _ci(pair, digits: int = 3) -> str:
    lo, hi = pair
    return "" if not (np.isfinite(lo) and np.isfinite(hi)) else f" [{lo:.{digits}f}, {hi:.{digits}f}]"


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")


def _plots(out: Path, results, summary) -> list[tuple[str, str]]:
    # lazy: pyplot's backend is chosen (Agg, no display) only where the report draws, never for its importers
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    made = []
    post = arm_scored(results)
    colors = {"Control": "#555555", "Sorafenib": "#d95f02", "NK": "#1b9e77", "Combination": "#7570b3"}
    y = np.array([ARMS.index(r.arm) for r in post], dtype=int)
    curves = [k for k in range(len(ARMS)) if 0 < (y == k).sum() < len(y)]  # an arm needs scans in and out
    if curves:  # no curve, no figure: an empty ROC plot says nothing
        proba = np.array([r.proba for r in post])
        fig, ax = plt.subplots(figsize=(5, 5))
        for k in curves:
            arm = ARMS[k]
            fpr, tpr, _ = roc_curve(y == k, proba[:, k])
            ax.plot(fpr, tpr, color=colors[arm], label=f"{arm} (AUROC {summary['arms']['per_arm'][arm]['auroc']:.2f})")
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.set(xlabel="1 - specificity", ylabel="sensitivity", title="Arm, one-vs-rest (post-baseline scans)")
        ax.legend(loc="lower right", fontsize=8)
        _save(fig, out / "roc.png")
        plt.close(fig)
        made.append(("roc.png", "ROC curves per arm"))

        rel = summary["arms"]["reliability"]
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot([0, 1], [0, 1], ":", color="grey")
        if rel:
            ax.plot([r["confidence"] for r in rel], [r["accuracy"] for r in rel], "o-", color="#1b9e77")
            for r in rel:
                ax.annotate(
                    str(r["n"]),
                    (r["confidence"], r["accuracy"]),
                    fontsize=7,
                    xytext=(3, -8),
                    textcoords="offset points",
                )
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1),
            xlabel="predicted probability of the chosen arm",
            ylabel="fraction correct",
            title=f"Calibration (ECE {summary['arms']['ece']:.3f}, Brier {summary['arms']['brier']:.3f})",
        )
        _save(fig, out / "calibration.png")
        plt.close(fig)
        made.append(("calibration.png", "Calibration of the arm probabilities (numbers: scans per bin)"))

    weeks = sorted({r.week for r in results if r.week is not None})
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(weeks) * 1.2), 4))
    positions, data, cols, ticks = [], [], [], []
    for wi, w in enumerate(weeks):
        for ai, arm in enumerate(ARMS):
            vals = [r.dice for r in results if r.week == w and r.arm == arm]
            if vals:
                positions.append(wi * (len(ARMS) + 1) + ai)
                data.append(vals)
                cols.append(colors[arm])
        ticks.append((wi * (len(ARMS) + 1) + 1.5, f"week {w}"))
    if data:
        parts = ax.boxplot(data, positions=positions, widths=0.8, patch_artist=True)
        for patch, c in zip(parts["boxes"], cols):
            patch.set_facecolor(c)
            patch.set_alpha(0.6)
        ax.set_xticks([t for t, _ in ticks], [lab for _, lab in ticks])
        ax.set(ylabel="Dice", ylim=(0, 1.02), title="Dice per scan, by arm and week")
        ax.legend(
            [plt.Rectangle((0, 0), 1, 1, color=colors[a], alpha=0.6) for a in ARMS], ARMS, fontsize=8, loc="lower left"
        )
    _save(fig, out / "dice.png")
    plt.close(fig)
    made.append(("dice.png", "Dice by arm and week"))

    histo = [r for r in results if r.viability_histology is not None]
    if histo:
        fig, axes = plt.subplots(1, 2, figsize=(9, 4.3))
        for ax, name, label in (
            (axes[0], "viability", "H&E viable fraction"),
            (axes[1], "apoptosis", "TUNEL apoptotic fraction"),
        ):
            truth = np.array([getattr(r, f"{name}_histology") for r in histo], float)
            pred = np.array([getattr(r, name) for r in histo], float)
            for arm in ARMS:
                sel = np.array([r.arm == arm for r in histo])
                ax.scatter(truth[sel], pred[sel], color=colors[arm], label=arm, s=22)
            lo = float(np.nanmin(np.concatenate([truth, pred]))) * 0.9
            hi = float(np.nanmax(np.concatenate([truth, pred]))) * 1.1
            ax.plot([lo, hi], [lo, hi], "--", color="grey", label="identity")
            m = summary["histology"][name]
            ax.set(
                xlabel=f"measured {label}",
                ylabel="predicted",
                title=f"{label}: RMSE {_f(m['rmse'])}, R² {_f(m['r2'], 2)}",
            )
        axes[0].legend(fontsize=8)
        _save(fig, out / "histology.png")
        plt.close(fig)
        made.append(("histology.png", "Histology at the endpoint, predicted against measured, one dot per rat"))
    return made


def _met(target: dict) -> str:
    if target["met"] is None:
        return "n/a (nothing read to score)"
    if target["met"]:
        return "yes"
    floor, op, bound = target.get("floor"), target["op"], target["bound"]
    if floor is not None and op == "<=" and floor > bound:
        return f"**no**; out of reach: the exact tumor composition itself scores {_f(floor, 4)}"
    arm_alone = target.get("arm_alone")
    if arm_alone is not None and op == "<=" and arm_alone > bound:
        return f"**no**; knowing each rat's arm and nothing else scores {_f(arm_alone, 4)}"
    return "**no**"


FACTOR_NAMES = {
    "sequences": "sequences the session has",
    "plane": "slice plane",
    "field_t": "field",
    "t1w_sequence": "T1w sequence",
    "t2w_sequence": "T2w sequence",
}


def _acquisition_lines(seg: dict) -> list[str]:
    """Dice per sequence subset read and per acquisition factor (where the study has more than one value)."""
    lines = []
    if seg.get("by_subset"):
        lines += [
            "",
            "### By the sequences read",
            "",
            "Each smaller readable subset of a session's sequences is segmented as a session that has only it, and "
            "compared with the same scans read with all the sequences they have.",
            "",
            "| sequences read | mean Dice | same scans, all their sequences | scans | rats |",
            "|---|---|---|---|---|",
        ]
        for name, v in seg["by_subset"].items():
            lines.append(f"| {name} | {_f(v['dice'])} | {_f(v['dice_all_sequences'])} | {v['scans']} | {v['rats']} |")
    varied = {k: v for k, v in seg.get("by_acquisition", {}).items() if len(v) > 1}
    if varied:
        lines += [
            "",
            "### By acquisition",
            "",
            "| factor | value | mean Dice | scans | rats |",
            "|---|---|---|---|---|",
        ]
        for factor, groups in varied.items():
            for value, v in groups.items():
                lines.append(
                    f"| {FACTOR_NAMES.get(factor, factor)} | {value} | {_f(v['dice'])} | {v['scans']} | {v['rats']} |"
                )
    return lines


def _adaptation_lines(curve: dict) -> list[str]:
    """The adaptation curve (`evaluate --adapt`, `evaluation/adaptation_curve.py`) as a section."""
    pts = curve["points"]
    lines = [
        "",
        "### Adaptation to this lab",
        "",
        f"The model fine-tuned on 0 to {max(p['corrected_scans'] for p in pts)} corrected scans of this lab "
        f"(`train --init --corrections-only`, the truth standing in for the radiologist's outline), scored on "
        f"{curve['test_scans']} scans of {len(curve['test_rats'])} test rats that gave no correction.",
        "",
        "| setting | corrected scans | sequences read (chosen on the corrected scans) | mean Dice, test rats | fine-tuning (s) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {p['setting']} | {p['corrected_scans']} | {p.get('read') or 'all the session has'} | {p['dice']:.3f} | {p['seconds']:.0f} |"
        for p in pts
    ]
    if curve.get("beyond_lab"):
        lines += ["", beyond_lab_sentence(curve)]
    return lines


def beyond_lab_sentence(curve: dict) -> str:
    """Why the curve has no point for some of the counts asked for (the lab has too few other rats)."""
    asked = ", ".join(str(c) for c in curve["beyond_lab"])
    return (
        f"No point for {asked} corrected scans: this lab has {curve['most_corrections']} rats besides the test "
        f"rats, one corrected scan each."
    )


def write_report(
    out: Path, results, summary: dict, info: dict, leaky: dict | None = None, notes: str | None = None
) -> Path:
    plots = _plots(out, results, summary)
    s = summary
    lines = ["# Evaluation report", ""]
    lines += [f"- Protocol: **{info['protocol']}**", f"- Study: `{info.get('study')}`"]
    if "model" in info:
        lines.append(f"- Model: `{info['model']}`")
    if "readout" in info:
        lines.append(f"- Response readout: {info['readout']}")
    if "epochs" in info:
        lines.append(
            f"- Training per fold: at most {info['epochs']} epoch(s), early stopping on validation rats, seed {info.get('seed')}"
            + (f", batches of {info['batch_size']} windows of {info['crop']} pixels" if "crop" in info else "")
        )
    lines += [
        f"- {s['scans']} scans of {s['rats']} rats; no rat is scored by a model that trained on it.",
        "- Arm metrics use post-baseline scans only: at week 0 no treatment has been given, so no image can tell the arms apart.",
        *(
            [
                f"- {s['arms_not_read']} post-baseline scan(s) had no arm reading (the sequences read cannot carry the "
                "response, and the model says so instead of giving a number): left out of the arm metrics."
            ]  # fmt: skip
            if s.get("arms_not_read")
            else []
        ),
        f"- 95 % intervals in brackets: bootstrap over rats (whole rats resampled, {info.get('bootstrap', 1000)} times).",
        "",
    ]
    lines += ["## Targets", "", "| metric | value | target | met |", "|---|---|---|---|"]
    lines += [f"| {t['metric']} | {_f(t['value'])} | {t['target']} | {_met(t)} |" for t in s["targets"]]
    seg = s["segmentation"]
    lines += [
        "",
        "## Segmentation",
        "",
        f"Mean Dice {_f(seg['dice_mean'])}{_ci(seg['dice_ci'])}, mean IoU {_f(seg['iou_mean'])}, "
        f"median HD95 {_f(seg['hd95_mm_median'], 2)} mm.",
        "",
        "| arm | "
        + " | ".join(f"week {w}" for w in sorted({w for v in seg["by_arm_week"].values() for w in v}))
        + " |",
    ]
    weeks = sorted({w for v in seg["by_arm_week"].values() for w in v})
    lines.append("|---|" + "---|" * len(weeks))
    for arm in ARMS:
        if arm in seg["by_arm_week"]:
            lines.append(f"| {arm} | " + " | ".join(_f(seg["by_arm_week"][arm].get(w)) for w in weeks) + " |")
    lines += _acquisition_lines(seg)
    if s.get("adaptation"):
        lines += _adaptation_lines(s["adaptation"])
    if "arms" in s:
        a = s["arms"]
        lines += [
            "",
            "## Treatment arm",
            "",
            f"{a['n']} post-baseline scans. Model: macro AUROC {_f(a['macro_auroc'])}{_ci(a['macro_auroc_ci'])}, "
            f"accuracy {_f(a['accuracy'])}{_ci(a['accuracy_ci'])}, Brier {_f(a['brier'])}, ECE {_f(a['ece'])}.",
        ]
        if "size_baseline" in s:
            b = s["size_baseline"]
            fitted = info.get("size_baseline", "the same rat folds as the model")
            lines.append(
                f"Size criterion (truth-mask volume, longest diameter, their change from baseline, week; logistic regression, "
                f"{fitted}): macro AUROC {_f(b['macro_auroc'])}{_ci(b['macro_auroc_ci'])}, accuracy {_f(b['accuracy'])}. "
                f"Model minus size: {_f(b['margin'])}{_ci(b['margin_ci'])}."
            )
        lines += [
            "",
            "| arm | AUROC model | AUROC size | sensitivity | specificity | scans |",
            "|---|---|---|---|---|---|",
        ]
        for arm in ARMS:
            v = a["per_arm"][arm]
            size = s.get("size_baseline", {}).get("per_arm", {}).get(arm, {}).get("auroc")
            lines.append(
                f"| {arm} | {_f(v['auroc'])} | {_f(size)} | {_f(v['sensitivity'])} | {_f(v['specificity'])} | {v['n']} |"
            )
        lines += [
            "",
            "Macro AUROC by week: " + ", ".join(f"week {w}: {_f(v)}" for w, v in a["by_week"].items()) + ".",
            "",
            "Confusion matrix (rows: true arm, columns: predicted):",
            "",
            "| | " + " | ".join(ARMS) + " |",
            "|---|" + "---|" * len(ARMS),
        ]
        for arm, row in zip(ARMS, a["confusion"]):
            lines.append(f"| {arm} | " + " | ".join(str(v) for v in row) + " |")
    if "histology" in s:
        h = s["histology"]
        floor = all("floor_rmse" in h[name] for name in ("viability", "apoptosis"))
        by_arm = all("arm_mean_rmse" in h[name] for name in ("viability", "apoptosis"))
        lines += ["", "## Histology at the endpoint (one scan per rat)", ""]
        if by_arm:
            lines += [
                "Arm alone: every rat given the mean measured value of its own arm in this cohort, what knowing the "
                "arm perfectly and reading nothing else would score (optimistic: the means come from these same rats).",
                "",
            ]
        if floor:
            lines += [
                "Floor: the tumor's exact composition (the simulator's truth maps: viable share of the tumor, "
                "apoptotic share of its cells) against the measured histology. Histology reads a few fields in a few "
                "sections, with reader and staining noise, so no reading of the images can be expected to come "
                "closer than this.",
                "",
            ]
        extra = (" arm alone |" if by_arm else "") + (" floor |" if floor else "")
        lines += [
            "| biomarker | RMSE | R² | Spearman | rats |" + extra,
            "|---|---|---|---|---|" + "---|" * extra.count("|"),
        ]
        for name in ("viability", "apoptosis"):
            m = h[name]
            lines.append(
                f"| {name} | {_f(m['rmse'], 4)}{_ci(m['rmse_ci'], 4)} | {_f(m['r2'], 2)} | {_f(m['spearman'], 2)} | {m['n']} |"
                + (f" {_f(m['arm_mean_rmse'], 4)} |" if by_arm else "")
                + (f" {_f(m['floor_rmse'], 4)}{_ci(m['floor_rmse_ci'], 4)} |" if floor else "")
            )
    if leaky:
        lines += [
            "",
            "## The paper's protocol (LEAKY, for comparison only)",
            "",
            f"{leaky['protocol']}. Slices of one rat are in training and test at once, so these figures overstate what a new rat would get.",
            "",
            "| tumor slices | mean slice Dice | macro AUROC (slices) | accuracy (slices) |",
            "|---|---|---|---|",
            f"| {leaky['tumor_slices']} | {_f(leaky['dice_mean'])} | {_f(leaky['macro_auroc'])} | {_f(leaky['accuracy'])} |",
        ]
    if notes:
        lines += ["", notes.strip()]
    lines += ["", "## Plots", ""] + [f"![{cap}]({name})\n\n{cap}.\n" for name, cap in plots]
    lines += ["", "Per-scan figures: `per_scan.csv`; every number of this report: `metrics.json`.", ""]
    path = out / "report.md"
    write_text(path, "\n".join(lines))
    return path
