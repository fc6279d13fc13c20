"""Which of a lab's sequences the model reads best, measured on the lab's corrected scans (`train --init
MODEL --corrections-only --choose-sequences`; the adaptation curve's `choose=1`). Opt-in: it raises the
unadapted reading of development labs, but with the fine-tuning after it they lost on average
(docs/training.md, "The lab's sequences"), so the adaptation setting keeps every sequence.

The network reads any subset of sequences with a T1w or a T2w (it was trained with sequence dropout). A
lab's sequence outside the world it learned from can mislead it more than it helps: a FLASH T1w with a
low flip angle, say, reads as proton density. A lab's corrected scans say so directly: each readable
subset the corrected sessions all hold is read by the model as it is and scored against the corrections.
The full set is kept unless a smaller subset reads them better by at least `MARGIN` in mean Dice; then
the largest subset within `MARGIN` of the best is read (as little left out as the scans allow). What it
leaves out goes into the new model's card (`input.leave_out`), the fine-tuning learns from what is kept,
and the new model reads every scan without it (`inference/subsets.as_read`).

`MARGIN` (0.1 of Dice) was chosen on five development cohorts (`benchmarks/sequence_choice.py`;
docs/training.md, "The lab's sequences"): a smaller margin let one corrected scan of a development lab
pick a subset that lost on the lab's other scans.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import numpy as np

from napari_hcc.inference.engine import Engine
from napari_hcc.io.labels import labelled_sessions
from napari_hcc.io.scan import without_sequences
from napari_hcc.metrics import dice
from napari_hcc.vocabulary import SEQUENCE_ROLES, held_subset, readable_subsets, subset_name

MARGIN = 0.1


@dataclass
class SequenceChoice:
    """The subset read from now on, what it leaves out, and the evidence (mean Dice per subset)."""

    read: str
    held: str  # the largest subset every corrected session holds
    leave_out: list[str] = field(default_factory=list)
    dice: dict[str, float] = field(default_factory=dict)
    scans: int = 0
    margin: float = MARGIN

    def as_dict(self) -> dict:
        return asdict(self)

    def sentence(self) -> str:
        """One sentence for the user (no full stop): what was chosen and why."""
        if not self.leave_out:
            return (
                f"The new model reads {self.held}, as before: no smaller subset read the {self.scans} corrected "
                f"scans better by {self.margin:.2f} of Dice"
            )
        return (
            f"The new model leaves out the lab's {' and '.join(self.leave_out)}: on the {self.scans} corrected "
            f"scans the model read {self.read} at mean Dice {self.dice[self.read]:.2f} against {self.dice[self.held]:.2f} "
            f"with {self.held}"
        )


def dice_by_subset(segment, scan, truth: np.ndarray, subsets: list[str]) -> dict[str, float]:
    """Dice of the mask `segment(scan)` makes from each of these subsets of the scan's sequences (also
    `evaluate --subsets`, evaluation/acquisition.py)."""
    return {name: float(dice(segment(without_sequences(scan, name.split("+"))) > 0, truth > 0)) for name in subsets}


def choose(scores: list[dict[str, float]], held: str, margin: float = MARGIN) -> SequenceChoice:
    """The rule: leave out as little as possible. `held` unless the best mean Dice over the corrected scans
    beats it by at least `margin`; then the subset with the most sequences among those within `margin` of
    the best (the better of two such). `scores` has one {subset: Dice} per corrected scan."""
    names = [n for n in readable_subsets(held) if all(n in s for s in scores)]
    means = {n: round(float(np.mean([s[n] for s in scores])), 4) for n in names}
    best = max(means.values())
    near = [n for n in names if means[n] > best - margin]
    read = max(near, key=lambda n: (len(n.split("+")), means[n]))
    kept = set(read.split("+"))
    leave_out = [r for r in SEQUENCE_ROLES if r in held.split("+") and r not in kept]
    return SequenceChoice(read, held, leave_out, means, len(scores), margin)


def common_subset(scans) -> str:
    """The largest subset every one of these scans holds."""
    have = set(SEQUENCE_ROLES)
    for scan in scans:
        have &= set(held_subset(scan.stand_ins).split("+"))
    return subset_name(have)


def choose_sequences(segment, pairs, margin: float = MARGIN) -> SequenceChoice:
    """Score each readable subset on the corrected scans, (scan, corrected mask) pairs, and `choose`.
    `segment` is a model's scan -> mask (e.g. `Engine.segment`)."""
    pairs = list(pairs)
    held = common_subset(scan for scan, _ in pairs)
    if not pairs or not held or ("T1w" not in held and "T2w" not in held):
        return SequenceChoice(held, held, [], {}, len(pairs), margin)
    subsets = readable_subsets(held)
    return choose([dice_by_subset(segment, scan, truth, subsets) for scan, truth in pairs], held, margin)


CARD_KEYS = ("leave_out", "sequence_choice")


def lab_sequences(model, studies, exclude_rats=(), device: str = "cpu", margin: float = MARGIN) -> SequenceChoice:
    """The choice on the corrected sessions of `studies`, those of `exclude_rats` ("study/subject": the rats
    scored before and after) left out, each read by `model` as it reads before any choice of its own."""
    plain = copy.copy(model)
    plain.card = copy.deepcopy(model.card)
    plain.card.input = {k: v for k, v in plain.card.input.items() if k not in CARD_KEYS}
    engine = Engine(plain, device=device)
    excluded = set(exclude_rats)
    pairs = [(s, m) for item, s, m, _ in labelled_sessions(studies, corrections_only=True) if item.rat not in excluded]
    return choose_sequences(engine.segment, pairs, margin)


def with_choice(card_input: dict, choice: SequenceChoice) -> dict:
    """A card's `input` with the choice: `leave_out` (only where something is left out) and its evidence."""
    out = {k: v for k, v in card_input.items() if k not in CARD_KEYS}
    if choice.leave_out:
        out["leave_out"] = list(choice.leave_out)
    return {**out, "sequence_choice": choice.as_dict()}
