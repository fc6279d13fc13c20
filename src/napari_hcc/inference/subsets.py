"""What a scan without some sequences costs: which sequences the model read, and its measured Dice on
that subset (from the model card's `metrics["subsets"]`, written from an `evaluate` report).

A model trained with sequence dropout reads the subset itself (the missing channels are zeros); an
older model reads stand-ins and says so (`io.scan.stand_in_note`, in place of the scan's `missing_note`).
A model adapted to a lab may leave out some of the lab's sequences, chosen on its corrected scans
(card `input.leave_out`, `training/sequence_choice.py`); `as_read` gives the scan as such a model reads it."""

from __future__ import annotations

from dataclasses import replace

from napari_hcc.inference.slices import reads_subsets
from napari_hcc.io.scan import missing_note, stand_in_note, without_sequences
from napari_hcc.vocabulary import SEQUENCE_ROLES, held_subset, subset_name

FULL = subset_name(SEQUENCE_ROLES)


def subset_dice(card, subset: str) -> float | None:
    """The card's measured mean Dice for a subset, or None when it was not measured."""
    row = (card.metrics.get("subsets") or {}).get(subset) or {}
    value = row.get("dice")
    return float(value) if isinstance(value, int | float) else None


def subset_note(card, stand_ins, left_out=()) -> str:
    """One sentence: the sequences read and what leaving the others out costs (or, for the sequences an
    adapted model leaves out, why it does)."""
    read = held_subset(stand_ins)
    missing = [r for r in SEQUENCE_ROLES if r in set(stand_ins) and r not in left_out]
    this, full = subset_dice(card, read), subset_dice(card, FULL)
    cost = (
        f"; the model's mean Dice reading {read} is {this:.2f}, against {full:.2f} with {FULL} (its card)"
        if this is not None and full is not None and not left_out
        else ""
    )
    why = [f"the session has no {' or '.join(missing)}: the model reads that subset{cost}"] if missing else []
    if left_out:
        why.append(
            f"this model was adapted to the lab and leaves out its {' and '.join(left_out)}: {leave_out_why(card)}"
        )
    return f"read {read} ({'; '.join(why)})"


def leave_out(card) -> list[str]:
    """The sequences a model adapted to a lab leaves out (card `input.leave_out`), in channel order."""
    chosen = set(card.input.get("leave_out") or ())
    return [r for r in SEQUENCE_ROLES if r in chosen]


def leave_out_why(card) -> str:
    """The evidence the choice rests on, from the card (`training/sequence_choice.SequenceChoice`)."""
    choice = card.input.get("sequence_choice") or {}
    dice, read, held = choice.get("dice") or {}, choice.get("read"), choice.get("held")
    if read in dice and held in dice:
        return (
            f"on its {choice.get('scans')} corrected scans the model read {read} at mean Dice {dice[read]:.2f} "
            f"against {dice[held]:.2f} with {held}"
        )
    return "chosen on the lab's corrected scans"


def as_read(card, scan):
    """The scan as this model reads it: the sequences the card leaves out become stand-ins (a channel of
    zeros), recorded in `scan.left_out`; a scan would never be left without a T1w or a T2w. Idempotent."""
    drop = [r for r in leave_out(card) if r not in scan.stand_ins]
    keep = [r for r in SEQUENCE_ROLES if r not in scan.stand_ins and r not in drop]
    if not drop or not reads_subsets(card) or ("T1w" not in keep and "T2w" not in keep):
        return scan
    read = without_sequences(scan, keep)
    return replace(read, notes=list(scan.notes), left_out=tuple(scan.left_out) + tuple(drop))


def subset_readout(model, stand_ins):
    """The readout that may read the response of a scan with these stand-ins, or None."""
    if not reads_subsets(model.card):
        return None
    readout = model.subset_readouts.get(held_subset(stand_ins))
    return readout if readout is not None and readout.info.get("reads_response") else None


#: why the response is not read, as the panel says it (Response.unread_because)
MISSING_SEQUENCE = "a sequence it is read from is missing"


def unread_response_note(model, stand_ins) -> str:
    """Why the response of a scan with this subset is not read."""
    read = held_subset(stand_ins)
    readout = model.subset_readouts.get(read)
    head = f"the response (arm, viability, apoptosis) is not read from {read} alone"
    if readout is None:
        return f"{head}: the model has no readout fitted for it"
    cv = readout.info.get("cross_validation", {})
    return (
        f"{head}: read from these sequences, the arm's cross-validated macro AUROC is "
        f"{cv.get('arm_macro_auroc_pooled', float('nan')):.2f}, below {readout.info.get('minimum_arm_auroc', 0.8):.2f}"
    )


def scan_notes(card, scan) -> list[str]:
    """The scan's notes, the note of a missing sequence replaced by what this model makes of it: the subset
    note for a model that reads subsets, the stand-in note for an older one."""
    if not scan.stand_ins:
        return list(scan.notes)
    missing = {r: s for r, s in scan.stand_ins.items() if r not in scan.left_out}
    own = missing_note(missing) if missing else None
    says = subset_note(card, scan.stand_ins, scan.left_out) if reads_subsets(card) else stand_in_note(scan.stand_ins)
    return [n for n in scan.notes if n != own] + [says]
