"""The inference engine: one scan in, one `Prediction` out. Used unchanged by the CLI and the GUI.

    engine = Engine(load_model(None), device="auto")
    prediction = engine.predict(scan, tta=True, progress=callback, cancel=event)

* All slices go through the network in batches; `progress(done, total)` is called after each batch
  and `cancel` (a threading.Event or any object with `is_set()`) is checked between batches.
* GPU: mixed precision (bf16 where supported, else fp16), channels-last. CPU: channels-last, fp32,
  or bf16 when the processor has native bf16. BatchNorm is folded into the convolutions.
* Out of memory: the batch is halved and retried; at a batch of one the model moves to the CPU
  (rebuilt from the checkpoint) and carries on. What happened is recorded in `Prediction.events`.
* TTA (flips along both in-plane axes): the mean is the prediction, the spread is the uncertainty.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np

from napari_hcc.model.checkpoint import LoadedModel
from napari_hcc.model.devices import autocast, choose_precision, describe_device, is_out_of_memory, resolve_device
from napari_hcc.inference.measure import longest_axial_diameter_mm, volume_mm3
from napari_hcc.io.orientation import to_display
from napari_hcc.inference.postprocess import PostProcess
from napari_hcc.inference.slices import model_slices
from napari_hcc.io.study import Scan, week_of
from napari_hcc.readout.features import tumor_features

#: flips of (rows, cols) used for test-time augmentation; the first is the plain pass
TTA_FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


class Cancelled(Exception):
    """Raised between batches when the caller asked to stop."""


@dataclass
class Prediction:
    """Everything one scan's inference produced; arrays are on the scan's source voxel grid."""

    subject: str | None
    session: str | None
    arms: list[str]
    arm_probabilities: np.ndarray  # (4,), sums to 1
    response_probability: float  # 1 - P(Control)
    viability: float  # H&E viable fraction of the tumor (nan without a tumor)
    apoptosis: float  # TUNEL apoptotic fraction (nan without a tumor)
    tumor_volume_mm3: float
    longest_diameter_mm: float
    mask: np.ndarray  # uint8, source grid
    probability: np.ndarray  # float32 tumor probability, source grid
    # per axial slice, in display order (inferior to superior); slice_index = the source voxel index
    slice_index: np.ndarray
    slice_tumor_probability: np.ndarray  # highest pixel probability on the slice
    slice_tumor_area_mm2: np.ndarray
    slice_arm_probabilities: np.ndarray  # (slices, 4)
    slice_uncertainty: np.ndarray
    uncertainty: float
    uncertainty_method: str  # "tta-std" or "entropy"
    arm_uncertainty: np.ndarray  # (4,) spread of the arm probabilities over TTA (zeros without TTA)
    model_id: str
    device: str
    precision: str
    batch_size: int
    tta: bool
    postprocess: dict
    timings: dict  # seconds: preprocess, network, postprocess, total
    events: list[str] = field(default_factory=list)  # out-of-memory fallbacks and the like
    notes: list[str] = field(default_factory=list)  # resampling and other deliberate changes
    #: where the arm and histology figures come from: "readout" (tumor features) or "network" (its heads)
    response_source: str = "network"
    #: the session's week in its BIDS study (0 = baseline, before treatment); None when unknown
    week: int | None = None
    #: the rat's earlier sessions the readout read beside this scan (core/rat_history.py)
    readout_sessions: list[str] = field(default_factory=list)
    #: True while the arm and histology are this scan's alone and the rat's earlier sessions are still to
    #: be read (`Engine.steps(read_history=False)`; `Engine.complete_response` reads them)
    response_pending: bool = False
    #: the readout's tumor features of this scan (FEATURE_NAMES), kept for `complete_response`
    tumor_features: np.ndarray | None = field(default=None, repr=False)

    @property
    def before_treatment(self) -> bool:
        """A baseline scan: no treatment given yet, so no image can show the arm."""
        return self.week == 0

    @property
    def arm_probability(self) -> dict[str, float]:
        return {arm: float(p) for arm, p in zip(self.arms, self.arm_probabilities)}

    @property
    def predicted_arm(self) -> str:
        return self.arms[int(np.argmax(self.arm_probabilities))]

    def summary(self) -> dict:
        """JSON-ready scan-level results (no voxel arrays)."""
        def num(v):
            return None if v is None or not np.isfinite(v) else round(float(v), 6)

        return {
            "subject": self.subject, "session": self.session, "week": self.week,
            "before_treatment": self.before_treatment,
            "arm_probabilities": {a: num(p) for a, p in self.arm_probability.items()},
            "predicted_arm": self.predicted_arm,
            "response_probability": num(self.response_probability),
            "viability": num(self.viability), "apoptosis": num(self.apoptosis),
            "tumor_volume_mm3": num(self.tumor_volume_mm3), "longest_diameter_mm": num(self.longest_diameter_mm),
            "uncertainty": num(self.uncertainty), "uncertainty_method": self.uncertainty_method,
            "arm_uncertainty": {a: num(u) for a, u in zip(self.arms, self.arm_uncertainty)},
            "slices": [
                {"index": int(i), "tumor_probability": num(p), "tumor_area_mm2": num(a), "uncertainty": num(u),
                 # the network's arm head on this slice alone, not the scan's reading (which may be the readout's)
                 "network_head_arm_probabilities": {arm: num(q) for arm, q in zip(self.arms, qs)}}
                for i, p, a, u, qs in zip(self.slice_index, self.slice_tumor_probability, self.slice_tumor_area_mm2,
                                          self.slice_uncertainty, self.slice_arm_probabilities)
            ],
            "model": self.model_id, "device": self.device, "precision": self.precision, "batch_size": self.batch_size,
            "tta": self.tta, "postprocess": self.postprocess, "response_source": self.response_source,
            "readout_sessions": list(self.readout_sessions), "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
            "events": self.events, "notes": self.notes,
        }


ProgressFn = Callable[[int, int], None]

BASELINE_NOTE = ("week 0 is the baseline scan, taken before treatment: no image can show the arm yet, so the arm "
                 "probabilities and the response are not a reading of treatment (the tumor mask and its size are)")


class Engine:
    """A model placed on a device, ready to predict many scans."""

    def __init__(self, model: LoadedModel, device: str = "auto", precision: str = "auto", batch_size: int | None = None):
        import torch

        from napari_hcc.io.study import InputError

        self.model = model
        self.card = model.card
        self.device = resolve_device(device) if isinstance(device, str) or device is None else torch.device(device)
        self.requested_precision = precision
        self.precision = choose_precision(self.device, precision)
        if batch_size is not None and batch_size < 1:
            raise InputError(f"the batch size must be at least 1 (got {batch_size}).")
        self.batch_size = int(batch_size or (32 if self.device.type != "cpu" else 16))
        #: tumor features of sessions segmented plainly (no TTA, the card's post-processing), by file
        #: identity: a rat's earlier sessions are read once however many later scans need them
        self._session_features: dict[tuple, np.ndarray | None] = {}
        self.events: list[str] = []
        t = time.perf_counter()
        self.net = self._place(self.device)
        self.load_seconds = time.perf_counter() - t

    # -- set-up ----------------------------------------------------------------------------------

    def _place(self, device):
        import torch

        from napari_hcc.model.network import fold_batchnorm

        net = self.model.build()
        fold_batchnorm(net)
        return net.to(device=device, memory_format=torch.channels_last).eval()

    def _fall_back_to_cpu(self, reason: str) -> None:
        import torch

        previous = self.device
        self.net = None
        if previous.type == "cuda":
            with contextlib.suppress(Exception):
                torch.cuda.empty_cache()
        self.device = torch.device("cpu")
        keep = self.requested_precision if self.requested_precision in ("fp32", "bf16") else "auto"
        self.precision = choose_precision(self.device, keep)
        self.net = self._place(self.device)
        self.events.append(f"{reason} on {previous} even with a batch of 1; continued on the CPU ({self.precision})")

    @property
    def device_name(self) -> str:
        return describe_device(self.device)

    # -- the network -----------------------------------------------------------------------------

    def _forward(self, x):
        """One batch through the network: (mask logits, arm logits, biomarker logits) as float32."""
        import torch

        with torch.inference_mode(), autocast(self.device, self.precision):
            mask, arm, bio = self.net(x)
        return mask.float(), arm.float(), bio.float()

    def _run_batch(self, batch: np.ndarray, flips):
        """A batch through every TTA flip: mean/std tensors on the CPU."""
        import torch

        x = torch.from_numpy(batch).to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        masks, arms, bios = [], [], []
        for flip in flips:
            xi = torch.flip(x, flip) if flip else x
            m, a, b = self._forward(xi)
            masks.append(torch.sigmoid(torch.flip(m, flip) if flip else m)[:, 0])
            arms.append(torch.softmax(a, dim=1))
            bios.append(torch.sigmoid(b))
        out = [torch.stack(v) for v in (masks, arms, bios)]
        return [t.cpu() for t in out]

    def _run_all(self, x: np.ndarray, flips, cancel):
        """All slices in batches with the out-of-memory fallback. A generator: yields (done, total)
        after each batch and returns the per-flip CPU tensors (masks, arms, biomarkers)."""
        import torch

        n = len(x)
        results = []
        start = 0
        batch = self.batch_size
        total = -(-n // batch)
        done = 0
        while start < n:
            if cancel is not None and cancel.is_set():
                raise Cancelled("inference was cancelled")
            stop = min(n, start + batch)
            try:
                results.append(self._run_batch(x[start:stop], flips))
            except Exception as exc:  # noqa: BLE001 - only out-of-memory errors are handled
                if not is_out_of_memory(exc):
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if batch > 1:
                    self.events.append(f"out of memory on {self.device} with a batch of {batch}; retried with {max(1, batch // 2)}")
                    batch = max(1, batch // 2)
                elif self.device.type != "cpu":
                    self._fall_back_to_cpu("out of memory")
                else:
                    from napari_hcc.io.study import InputError

                    raise InputError("the scan does not fit in memory even one slice at a time on the CPU.") from None
                total = done + -(-(n - start) // batch)
                continue
            start = stop
            done += 1
            yield done, total
        return [torch.cat([r[i] for r in results], dim=1) for i in range(3)]

    # -- one scan --------------------------------------------------------------------------------

    def segment(self, scan: Scan, cancel=None) -> np.ndarray:
        """The tumor mask of a scan on its own grid: no TTA, the card's post-processing, no readout."""
        x, geometry = model_slices(scan.channels(), scan.affine, self.card)
        masks = _drain(self._run_all(x, TTA_FLIPS[:1], cancel))[0]
        probability = geometry.to_source(_display_probability(masks, geometry))
        return PostProcess.from_card(self.card).apply(probability, scan.affine)

    def forget_sessions(self) -> None:
        """Drop the cached features of earlier sessions (they are read again when next needed)."""
        self._session_features.clear()

    @staticmethod
    def _file_key(path) -> tuple | None:
        import os

        try:
            st = os.stat(path)
        except (OSError, TypeError):
            return None
        return (os.path.abspath(path), st.st_mtime_ns, st.st_size)

    def _features_of_session(self, ref, cancel=None) -> np.ndarray | None:
        key = self._file_key(ref.t1w)
        if key in self._session_features:
            return self._session_features[key]
        scan = ref.load()
        value = tumor_features(scan, self.segment(scan, cancel))
        if key is not None:
            self._session_features[key] = value
        return value

    def _history(self, scan: Scan, week: int | None, notes: list[str], cancel=None):
        """The rat's earlier sessions for the readout (core/rat_history.py); one that cannot be read is
        left out with a note."""
        from napari_hcc.readout.history import earlier_sessions, history_of
        from napari_hcc.io.study import InputError

        earlier = []
        for w, ref in earlier_sessions(scan.paths.get("T1w"), scan.subject, scan.session):
            if cancel is not None and cancel.is_set():
                raise Cancelled("inference was cancelled")
            try:
                earlier.append((w, ref.session, self._features_of_session(ref, cancel)))
            except (InputError, OSError, ValueError) as exc:
                notes.append(f"the rat's earlier session {ref.session} could not be read ({exc}); the response is read without it")
        return history_of(week, earlier)

    def predict(self, scan: Scan, tta: bool = False, postprocess: PostProcess | None = None,
                progress: ProgressFn | None = None, cancel=None, keep_probability: bool = True) -> Prediction:
        return _drain(self.steps(scan, tta=tta, postprocess=postprocess, cancel=cancel, keep_probability=keep_probability), progress)

    def steps(self, scan: Scan, tta: bool = False, postprocess: PostProcess | None = None, cancel=None,
              keep_probability: bool = True, read_history: bool = True) -> Generator[tuple[int, int], None, Prediction]:
        """`predict` as a generator (for a napari thread_worker): yields (batches done, total) and
        returns the Prediction. Closing the generator between batches stops the work.

        With `read_history=False` the readout reads this scan alone and, at a follow-up scan in a study,
        marks the result `response_pending`: the mask can go on screen before the rat's earlier sessions are
        looked up and segmented, and `complete_response` finishes the reading."""
        import torch

        t0 = time.perf_counter()
        self.events = []
        post = postprocess or PostProcess.from_card(self.card)
        x, geometry = model_slices(scan.channels(), scan.affine, self.card)
        t1 = time.perf_counter()
        flips = TTA_FLIPS if tta else TTA_FLIPS[:1]
        masks, arms, bios = yield from self._run_all(x, flips, cancel)  # (F, N, H, W), (F, N, 4), (F, N, 2)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        t2 = time.perf_counter()

        prob_disp = _display_probability(masks, geometry)  # (N, rows, cols)
        spread_disp = geometry.to_display_grid(masks.std(0, unbiased=False)) if tta else None
        probability = geometry.to_source(prob_disp)
        mask = post.apply(probability, scan.affine)
        mask_disp, _ = to_display(mask, scan.affine)

        pixel_mm2 = geometry.display_spacing[1] * geometry.display_spacing[2]
        area = mask_disp.reshape(len(mask_disp), -1).sum(1) * pixel_mm2
        arm_mean = arms.mean(0).numpy().astype(np.float64)  # (N, 4)
        agg = aggregate_scan(prob_disp, mask_disp, arms.numpy(), bios.numpy())
        arm_p, viability, apoptosis = agg.arm_probabilities, agg.viability, agg.apoptosis
        arm_unc = agg.arm_spread if tta else np.zeros(len(arm_p))
        notes = list(scan.notes) + list(geometry.notes)
        response_source = "network"
        readout = self.model.readout
        features = tumor_features(scan, mask) if readout is not None else None
        week = week_of(scan.paths.get("T1w"), scan.subject, scan.session)
        pending = False
        if features is not None:  # the readout reads the final mask: arms and histology from tumor features
            if not tta and post.as_dict() == PostProcess.from_card(self.card).as_dict() and (key := self._file_key(scan.paths.get("T1w"))):
                self._session_features[key] = features  # a later session of this rat may read it
            reading = readout.read(features)  # this scan alone; the rat's earlier sessions below
            arm_p, viability, apoptosis = reading.arm_probabilities, reading.viability, reading.apoptosis
            arm_unc = np.zeros(len(arm_p))  # one mask, one reading: no TTA spread for the readout
            response_source = "readout"
            pending = readout.reads_history and week is not None and week > 0  # a follow-up: earlier sessions to look up
        if week == 0:
            notes.append(BASELINE_NOTE)
        if not agg.has_tumor:
            notes.append("no tumor found: arm probabilities are the mean over all slices; viability and apoptosis are not estimated")

        slice_unc, unc, method = _uncertainty(prob_disp, spread_disp)
        t3 = time.perf_counter()
        prediction = Prediction(
            subject=scan.subject, session=scan.session, arms=list(self.card.arms),
            arm_probabilities=arm_p, response_probability=float(1.0 - arm_p[0]),
            viability=viability, apoptosis=apoptosis,
            tumor_volume_mm3=volume_mm3(mask, scan.affine), longest_diameter_mm=longest_axial_diameter_mm(mask, scan.affine),
            mask=mask, probability=probability if keep_probability else None,
            slice_index=geometry.display_slice_to_source_index(),
            slice_tumor_probability=prob_disp.reshape(len(prob_disp), -1).max(1).astype(np.float64),
            slice_tumor_area_mm2=area.astype(np.float64), slice_arm_probabilities=arm_mean,
            slice_uncertainty=slice_unc, uncertainty=unc, uncertainty_method=method, arm_uncertainty=arm_unc,
            model_id=self.model.model_id, device=str(self.device), precision=self.precision, batch_size=self.batch_size,
            tta=tta, postprocess=post.as_dict(),
            timings={"preprocess": t1 - t0, "network": t2 - t1, "postprocess": t3 - t2, "total": t3 - t0},
            events=list(self.events), notes=notes, response_source=response_source, week=week,
            response_pending=pending, tumor_features=features,
        )
        return self.complete_response(prediction, scan, cancel) if read_history else prediction

    def complete_response(self, prediction: Prediction, scan: Scan, cancel=None) -> Prediction:
        """The prediction with its arm and histology read beside the rat's earlier sessions (each segmented
        once per engine), when `steps(read_history=False)` left them pending; otherwise as it is."""
        from dataclasses import replace

        if not prediction.response_pending or self.model.readout is None or prediction.tumor_features is None:
            return prediction
        t0 = time.perf_counter()
        notes = list(prediction.notes)
        reading = self.model.readout.read(prediction.tumor_features, self._history(scan, prediction.week, notes, cancel))
        if reading.sessions:
            notes.append(f"response read with the rat's earlier sessions {', '.join(reading.sessions)}")
        seconds = time.perf_counter() - t0
        timings = prediction.timings | {"earlier_sessions": seconds, "total": prediction.timings["total"] + seconds}
        return replace(prediction, arm_probabilities=reading.arm_probabilities, response_probability=float(1.0 - reading.arm_probabilities[0]),
                       viability=reading.viability, apoptosis=reading.apoptosis, readout_sessions=list(reading.sessions),
                       notes=notes, timings=timings, response_pending=False)


def _drain(steps: Generator, progress: ProgressFn | None = None):
    """Run a (done, total)-yielding generator to its end, reporting progress; its return value."""
    while True:
        try:
            done, total = next(steps)
        except StopIteration as finished:
            return finished.value
        if progress is not None:
            progress(done, total)


def _display_probability(masks, geometry) -> np.ndarray:
    """The mean tumor probability over the TTA passes on the display grid, float32 in [0, 1]."""
    return geometry.to_display_grid(masks.mean(0)).clamp_(0, 1).numpy().astype(np.float32)


@dataclass
class ScanAggregate:
    arm_probabilities: np.ndarray
    arm_spread: np.ndarray  # standard deviation over the TTA passes
    viability: float
    apoptosis: float
    has_tumor: bool


def aggregate_scan(prob: np.ndarray, mask: np.ndarray, arms: np.ndarray, bios: np.ndarray) -> ScanAggregate:
    """Slices -> one scan: arm probabilities and biomarkers averaged with weights = each slice's
    predicted tumor content (the summed probability inside the mask).

    prob, mask: (N, H, W); arms: (F, N, 4) softmax per pass; bios: (F, N, 2) sigmoid per pass.
    Without a tumor the arms are the plain mean over slices and the biomarkers NaN.
    """
    weights = (np.asarray(prob, np.float64) * (np.asarray(mask) > 0)).reshape(len(prob), -1).sum(1)
    has_tumor = bool(weights.sum() > 0)
    w = weights / weights.sum() if has_tumor else np.full(len(weights), 1.0 / len(weights))
    per_pass = np.einsum("n,fna->fa", w, np.asarray(arms, np.float64))
    arm_p = per_pass.mean(0)
    arm_p = arm_p / arm_p.sum()
    if has_tumor:
        viability, apoptosis = (float(v) for v in w @ np.asarray(bios, np.float64).mean(0))
    else:
        viability = apoptosis = float("nan")
    return ScanAggregate(arm_p, per_pass.std(0), viability, apoptosis, has_tumor)


def _uncertainty(prob: np.ndarray, spread: np.ndarray | None) -> tuple[np.ndarray, float, str]:
    """Per slice and per scan, over the pixels that may be tumor (p > 0.05).

    With TTA: the mean standard deviation of the tumor probability across the flips ("tta-std").
    Without: the mean binary entropy of the probability, in bits ("entropy"). 0 = certain.
    """
    candidate = prob > 0.05
    if spread is not None:
        values, method = spread.numpy() if hasattr(spread, "numpy") else spread, "tta-std"
    else:
        p = np.clip(prob, 1e-6, 1 - 1e-6)
        values, method = -(p * np.log2(p) + (1 - p) * np.log2(1 - p)), "entropy"
    per_slice = np.zeros(len(prob))
    for k in range(len(prob)):
        c = candidate[k]
        per_slice[k] = float(values[k][c].mean()) if c.any() else 0.0
    scan = float(values[candidate].mean()) if candidate.any() else 0.0
    return per_slice, scan, method


def predict(scan: Scan, model: LoadedModel | None = None, device: str = "auto", tta: bool = False,
            batch_size: int | None = None, precision: str = "auto", postprocess: PostProcess | None = None,
            progress: ProgressFn | None = None, cancel=None) -> Prediction:
    """One-off convenience: load (default) model, place it, predict one scan."""
    from napari_hcc.model.checkpoint import load_model

    engine = Engine(model or load_model(None), device=device, precision=precision, batch_size=batch_size)
    return engine.predict(scan, tta=tta, postprocess=postprocess, progress=progress, cancel=cancel)
