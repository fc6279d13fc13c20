"""The response readout: treatment arm and histology from the tumor's features (readout/features.py).

The network finds the tumor; this readout reads it. Two linear models on the standardised
FEATURE_NAMES vector of a scan and its tumor mask:

* arm: multinomial logistic regression -> P(Control, Sorafenib, NK, Combination), fitted on
  post-baseline scans only (at week 0 no treatment has been given). At a treated scan the reading is
  pooled with the rat's earlier treated scans (normalised geometric mean of their probabilities), as a
  radiologist reads a follow-up against the earlier ones (readout/history.py);
* histology: one ridge regression on logit(fraction) per arm (H&E viable and TUNEL apoptotic fraction),
  fitted on the one scan per rat where histology was measured, each on the rats of its arm; a scan's
  estimate is the mixture of the four, weighted by its arm probabilities. Histology depends on the
  treatment's mechanism (NK cells and the combination raise apoptosis most, and what a given intensity
  means differs by arm), which one linear model across arms cannot express. Each target gets its own
  regularisation, chosen by rat-grouped CV with out-of-fold arm probabilities as the weights.
* apoptosis, from model 1.3: the TUNEL index varies within an arm with how strongly each rat responds,
  and that shows in the tumor's make-up more than in any one intensity. A first stage estimates the
  tumor's composition (necrosis, oedema, apoptotic index, viable perfusion; readout/composition.py)
  from the features, fitted on every session against the simulator's truth; the second reads apoptosis
  per arm (ridge on the fraction itself) from the estimates now, at baseline, and on average over the
  treated sessions in between. The route is kept only when rat-grouped CV inside the fitting set says it
  beats reading the scan's features alone; studies without composition truth use the scan's features.

Features are standardised and then clipped to the range the fitting scans spanned, so an unusual mask
or image (a real scan, a poor segmentation) cannot send a linear model far outside what it learned: on
the development cohorts one unclipped scan once read an apoptotic fraction of 0.9.

Why linear and why features: the network's own arm head, pooled over slices, learned the 24 training
rats and ranked unseen ones at a macro AUROC of about 0.86 (docs/model.md); a regularised linear model on
tumor intensity ratios fits from a few dozen rats without memorising them and is transparent (each
coefficient has a name). The regularisation strength of each model is chosen by rat-grouped
cross-validation inside the fitting set (scikit-learn), never on the rats it is scored on.

The readout is fitted on the masks it will read: the network's own, run over the fitting studies
(`add_readout`), not the truth, so its inputs at fitting and at prediction look alike.

The fitted numbers travel inside the model's safetensors file under the `readout.` prefix, and the
card's `readout` entry says which features, which fitting set and the cross-validated scores. A model
without a readout uses the network's heads as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit

from napari_hcc.readout.features import FEATURE_NAMES
from napari_hcc.readout.history import RatHistory

PREFIX = "readout."
EPS = 1e-4


def _standardised(
    f: np.ndarray, mean: np.ndarray, scale: np.ndarray, low: np.ndarray | None, high: np.ndarray | None
) -> np.ndarray:
    """Features (one row or many) in standard units, clipped to [low, high] when a range is given."""
    z = (np.asarray(f, np.float64) - mean) / scale
    return z if low is None else np.clip(z, low, high)


def pooled_arm_probabilities(probabilities: Sequence[np.ndarray]) -> np.ndarray:
    """One arm reading from several scans of a rat: the normalised geometric mean of their probabilities."""
    logp = np.mean([np.log(np.clip(np.asarray(p, np.float64), 1e-12, 1.0)) for p in probabilities], axis=0)
    e = np.exp(logp - logp.max())
    return e / e.sum()


def history_vector(now: np.ndarray, baseline: np.ndarray | None, between: Sequence[np.ndarray]) -> np.ndarray:
    """[now, at baseline, mean over the treated sessions in between], this scan's own value standing in
    for what the rat lacks; the one rule for fitting (`_history_rows`) and reading (`Readout.read`)."""
    return np.concatenate(
        [now, now if baseline is None else baseline, np.mean(between, axis=0) if len(between) else now]
    )


@dataclass
class Reading:
    """What the readout says of one scan."""

    arm_probabilities: np.ndarray
    viability: float
    apoptosis: float
    sessions: list[str] = field(default_factory=list)  # the rat's earlier sessions it read beside this scan


@dataclass
class Readout:
    features: list[str]
    mean: np.ndarray  # (F,) standardisation
    scale: np.ndarray  # (F,)
    arm_coef: np.ndarray  # (4, F)
    arm_intercept: np.ndarray  # (4,)
    #: per arm, on logit(fraction): (4 arms, 2 targets, F) and (4, 2). Readouts of model 1.1 had one
    #: stacked model, (2, F + 4) with the arm probabilities as inputs; they still load and read.
    bio_coef: np.ndarray
    bio_intercept: np.ndarray
    info: dict = field(default_factory=dict)
    #: range of the standardised features over the fitting scans; None = no clipping (model 1.1)
    z_low: np.ndarray | None = None
    z_high: np.ndarray | None = None
    #: model 1.3: the composition stage (len(COMPOSITION_TARGETS), F) and (T,), the standardisation of the
    #: history vector (3 T,) with its range, and the per-arm apoptosis experts on it (A, 3 T) and (A,)
    comp_coef: np.ndarray | None = None
    comp_intercept: np.ndarray | None = None
    hist_mean: np.ndarray | None = None
    hist_scale: np.ndarray | None = None
    hist_low: np.ndarray | None = None
    hist_high: np.ndarray | None = None
    apo_coef: np.ndarray | None = None
    apo_intercept: np.ndarray | None = None
    pools_sessions: bool = False  # model 1.3: the arm is read over the rat's treated sessions

    def __post_init__(self):
        unknown = [n for n in self.features if n not in FEATURE_NAMES]
        if unknown:
            raise ValueError(
                f"the readout uses features this version of napari-hcc does not compute: {', '.join(unknown[:3])}."
            )
        self._index = np.array([FEATURE_NAMES.index(n) for n in self.features], int)

    def _z(self, f: np.ndarray) -> np.ndarray:
        """Standard units of the readout's own features, from a full FEATURE_NAMES vector."""
        return _standardised(np.asarray(f, np.float64)[self._index], self.mean, self.scale, self.z_low, self.z_high)

    @property
    def reads_history(self) -> bool:
        return self.pools_sessions or self.comp_coef is not None

    def arm_probabilities(self, f: np.ndarray) -> np.ndarray:
        """The arm probabilities of one scan alone."""
        logits = self.arm_coef @ self._z(f) + self.arm_intercept
        e = np.exp(logits - logits.max())
        return e / e.sum()

    def composition(self, f: np.ndarray) -> np.ndarray | None:
        """The composition estimate (COMPOSITION_TARGETS) of one scan; None without that stage."""
        return None if self.comp_coef is None else self.comp_coef @ self._z(f) + self.comp_intercept

    def read(self, f: np.ndarray, history: RatHistory | None = None) -> Reading:
        """Arm and histology of a scan, with the rat's earlier sessions where the readout uses them."""
        history = history or RatHistory()
        p = self.arm_probabilities(f)
        if self.pools_sessions and history.treated and history.earlier:
            p = pooled_arm_probabilities([p] + [self.arm_probabilities(e) for e in history.earlier])
        viability, apoptosis = self.biomarkers(f, p)
        has_history = bool(history.earlier) or (history.baseline is not None and history.treated)
        if self.comp_coef is not None and has_history:
            # Without any earlier session (a loose file) the composition route would read far outside what
            # it was fitted on (every endpoint it learned from had its baseline and follow-ups): the
            # scan's own experts answer instead.
            apoptosis = self._apoptosis_from_history(f, history, p)
        used = history.sessions if self.reads_history and has_history else []
        return Reading(p, viability, apoptosis, list(used))

    def _apoptosis_from_history(self, f: np.ndarray, history: RatHistory, weights: np.ndarray) -> float:
        baseline = self.composition(history.baseline) if history.baseline is not None and history.treated else None
        h = history_vector(self.composition(f), baseline, [self.composition(e) for e in history.earlier])
        h = _standardised(h, self.hist_mean, self.hist_scale, self.hist_low, self.hist_high)
        return float(np.clip(np.asarray(weights, np.float64) @ (self.apo_coef @ h + self.apo_intercept), 0.0, 1.0))

    def biomarkers(self, f: np.ndarray, arm_probabilities: np.ndarray) -> tuple[float, float]:
        """(viability, apoptosis) from the features and this scan's arm probabilities."""

        w = np.asarray(arm_probabilities, np.float64)
        if self.bio_coef.ndim == 2:  # model 1.1: one model with the arm probabilities as inputs
            viability, apoptosis = expit(self.bio_coef @ np.concatenate([self._z(f), w]) + self.bio_intercept)
        else:
            viability, apoptosis = w @ expit(self.bio_coef @ self._z(f) + self.bio_intercept)
        return float(viability), float(apoptosis)

    def arrays(self, prefix: str = PREFIX) -> dict[str, np.ndarray]:
        """The fitted numbers as float32 arrays, named as they are stored in the model's safetensors file."""

        arrays = {
            "mean": self.mean,
            "scale": self.scale,
            "arm.weight": self.arm_coef,
            "arm.bias": self.arm_intercept,
            "biomarkers.weight": self.bio_coef,
            "biomarkers.bias": self.bio_intercept,
        }
        if self.z_low is not None:
            arrays |= {"clip.low": self.z_low, "clip.high": self.z_high}
        if self.comp_coef is not None:
            arrays |= {
                "composition.weight": self.comp_coef,
                "composition.bias": self.comp_intercept,
                "history.mean": self.hist_mean,
                "history.scale": self.hist_scale,
                "history.low": self.hist_low,
                "history.high": self.hist_high,
                "apoptosis.weight": self.apo_coef,
                "apoptosis.bias": self.apo_intercept,
            }
        return {prefix + k: np.ascontiguousarray(v, np.float32) for k, v in arrays.items()}

    def card_entry(self) -> dict:
        return {"features": list(self.features), **self.info}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], entry: dict, prefix: str = PREFIX) -> Readout:
        def get(name):
            return np.asarray(arrays[prefix + name], np.float64)

        def maybe(name):
            return get(name) if prefix + name in arrays else None

        composition = {
            name: maybe(name)
            for name in (
                "composition.weight",
                "composition.bias",
                "history.mean",
                "history.scale",
                "history.low",
                "history.high",
                "apoptosis.weight",
                "apoptosis.bias",
            )
        }
        return cls(
            list(entry["features"]),
            get("mean"),
            get("scale"),
            get("arm.weight"),
            get("arm.bias"),
            get("biomarkers.weight"),
            get("biomarkers.bias"),
            {k: v for k, v in entry.items() if k not in ("features", "subsets")},
            maybe("clip.low"),
            maybe("clip.high"),
            *composition.values(),
            pools_sessions=bool(entry.get("arm_pooling")),
        )


def readout_summary(readout: Readout) -> str:
    """One line for a report: how this readout reads a scan."""
    arm = "arm pooled over the rat's treated sessions" if readout.pools_sessions else "arm from each scan alone"
    apoptosis = (
        "apoptosis from the tumor's estimated composition now, at baseline and in between"
        if readout.comp_coef is not None
        else "apoptosis from the scan's features"
    )
    return f"tumor features of the network's mask; {arm}; viability from the scan's features; {apoptosis}"


def subset_prefix(subset: str) -> str:
    """Where the readout of a sequence subset (e.g. 'T1w+T2w') is stored in the safetensors file."""
    return f"readout@{subset}."


def split_state(state: dict) -> tuple[dict, dict]:
    """(network tensors, readout tensors: the full readout's and every subset readout's) of a checkpoint."""
    net = {k: v for k, v in state.items() if not k.startswith(("readout.", "readout@"))}
    return net, {k: v for k, v in state.items() if k not in net}
