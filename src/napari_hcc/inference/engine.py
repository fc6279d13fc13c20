"""The inference engine: one scan in, one `Prediction` out. Used unchanged by the CLI and the GUI.

    engine = Engine(load_model(None), device="auto")
    prediction = engine.predict(scan, tta=True, progress=callback, cancel=event)

* All slices go through the network in batches; `progress(Progress)` is called after each batch and
  `cancel` (a threading.Event or any object with `is_set()`) is checked between batches (`progress.py`).
* Backends (`backend_choice.py`): torch (`torch_runner.py`: CPU, CUDA, MPS), or on a CPU the model's
  exported graph under OpenVINO or ONNX Runtime (`graph_runner.py`); both take and give numpy, and
  everything after the network is shared. torch is imported only when it runs the network: on a CPU
  with the exported graph, reading a scan needs no torch at all.
* Out of memory: the batch is halved and retried; at a batch of one the model moves to the CPU
  (rebuilt from the checkpoint) and carries on. What happened is recorded in `Prediction.run.events`.
* TTA (flips along both in-plane axes): the mean is the prediction, the spread is the uncertainty.
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from dataclasses import replace
from pathlib import Path

import numpy as np

from napari_hcc.errors import InputError
from napari_hcc.inference.aggregate import aggregate_scan, mask_uncertainty
from napari_hcc.inference.backend_choice import choose_backend
from napari_hcc.inference.graph_runner import GraphRunner
from napari_hcc.inference.liver_extent import UNLIKE_WORLD, liver_cm3, unlike_world_note
from napari_hcc.inference.measure import longest_axial_diameter_mm, volume_mm3
from napari_hcc.inference.postprocess import PostProcess
from napari_hcc.inference.prediction import BASELINE_NOTE, Prediction, Response, RunInfo, SliceTable, left_out_note
from napari_hcc.inference.slices import model_slices, reads_subsets
from napari_hcc.inference.subsets import MISSING_SEQUENCE, as_read, scan_notes, subset_readout, unread_response_note
from napari_hcc.io.orientation import to_display
from napari_hcc.io.scan import Scan
from napari_hcc.io.study import week_of
from napari_hcc.model.compute import cpu_precision, cpu_without_torch, is_out_of_memory
from napari_hcc.model.graph import liver_channel
from napari_hcc.model.loading import LoadedModel, load_model
from napari_hcc.progress import CancelFlag, Progress, ProgressFn, check_cancel, drain
from napari_hcc.readout.features import tumor_features
from napari_hcc.readout.history import earlier_sessions, history_of
from napari_hcc.vocabulary import held_subset

#: flips of (rows, cols) used for test-time augmentation; the first is the plain pass
TTA_FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


class Engine:
    """A model placed on a device, ready to predict many scans."""

    def __init__(
        self,
        model: LoadedModel,
        device: str = "auto",
        precision: str = "auto",
        batch_size: int | None = None,
        backend: str = "auto",
    ):

        self.model = model
        self.card = model.card
        if batch_size is not None and batch_size < 1:
            raise InputError(f"the batch size must be at least 1 (got {batch_size}).")
        #: tumor features of sessions segmented plainly (no TTA, the card's post-processing), by file
        #: identity: a rat's earlier sessions are read once however many later scans need them
        self._session_features: dict[tuple, np.ndarray | None] = {}
        self.events: list[str] = []
        t = time.perf_counter()
        self.requested_precision = precision
        # the CPU is known without torch; anything else (a GPU, or 'auto' where one may be) torch names
        cpu = cpu_without_torch(device) if isinstance(device, str) or device is None else None
        place = cpu or _torch().torch_device(device)
        choice = choose_backend(backend, place.type, self.card, model.path)
        self.backend = choice.kind
        #: why auto chose what it chose (e.g. torch, because the model has no exported graph); "" otherwise
        self.backend_note = choice.note
        if choice.graph is not None:
            liver = liver_channel(self.card)
            self.runner = GraphRunner(choice.graph, choice.kind, cpu_precision(precision), liver=liver)
        else:
            self.runner = _torch().TorchRunner(model, place, precision)
        self.device = self.runner.device
        self.precision = self.runner.precision
        self.batch_size = int(batch_size or _default_batch(self.backend, self.device.type))
        self.load_seconds = time.perf_counter() - t

    def _fall_back_to_cpu(self, reason: str) -> None:

        previous = self.device
        self.runner = self.runner.on_cpu(self.requested_precision)
        self.device, self.precision = self.runner.device, self.runner.precision
        self.events.append(f"{reason} on {previous} even with a batch of 1; continued on the CPU ({self.precision})")

    @property
    def net(self):
        """The torch network, when torch runs it; None under an exported-graph backend."""
        return getattr(self.runner, "net", None)

    @property
    def device_name(self) -> str:
        return self.runner.describe()

    # -- the network -----------------------------------------------------------------------------

    def _run_all(self, x: np.ndarray, flips, cancel: CancelFlag | None):
        """All slices in batches with the out-of-memory fallback. A generator: yields `Progress`
        after each batch and returns the per-flip arrays (masks, arms, biomarkers[, liver])."""

        n = len(x)
        results = []
        start = 0
        batch = self.batch_size
        total = -(-n // batch)
        done = 0
        while start < n:
            check_cancel(cancel, "inference")
            stop = min(n, start + batch)
            try:
                results.append(self.runner.passes(x[start:stop], flips))
            except Exception as exc:  # only out-of-memory errors are handled; the rest are raised again
                if not is_out_of_memory(exc):
                    raise
                self.runner.release_memory()
                if batch > 1:
                    self.events.append(
                        f"out of memory on {self.device} with a batch of {batch}; retried with {max(1, batch // 2)}"
                    )
                    batch = max(1, batch // 2)
                elif self.device.type != "cpu":
                    self._fall_back_to_cpu("out of memory")
                else:
                    raise InputError("the scan does not fit in memory even one slice at a time on the CPU.") from None
                total = done + -(-(n - start) // batch)
                continue
            start = stop
            done += 1
            yield Progress(done, total, "batch")
        return [np.concatenate([r[i] for r in results], axis=1) for i in range(len(results[0]))]

    # -- one scan --------------------------------------------------------------------------------

    def segment(self, scan: Scan, cancel: CancelFlag | None = None) -> np.ndarray:
        """The tumor mask of a scan on its own grid: no TTA, the card's post-processing, no readout."""
        probability, liver = self.maps(scan, cancel)
        return PostProcess.from_card(self.card).apply(probability, scan.affine, liver)

    def maps(self, scan: Scan, cancel: CancelFlag | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """One plain pass: the tumor probability on the scan's grid and, for a network with an anatomy
        head, the liver probability (else None)."""
        scan = as_read(self.card, scan)
        x, geometry = model_slices(scan.channels(), scan.affine, self.card, scan.stand_ins)
        masks, _, _, *livers = drain(self._run_all(x, TTA_FLIPS[:1], cancel))
        return geometry.to_source(geometry.display_probability(masks)), _on_source(livers, geometry)

    def forget_sessions(self) -> None:
        """Drop the cached features of earlier sessions (they are read again when next needed)."""
        self._session_features.clear()

    @staticmethod
    def _file_key(path) -> tuple | None:

        try:
            st = os.stat(path)
        except (OSError, TypeError):
            return None
        return (os.path.abspath(path), st.st_mtime_ns, st.st_size)

    def _features_of_session(self, ref, cancel: CancelFlag | None = None) -> np.ndarray | None:
        key = self._file_key(ref.t1w)
        if key in self._session_features:
            return self._session_features[key]
        scan = ref.load()
        value = tumor_features(scan, self.segment(scan, cancel))
        if key is not None:
            self._session_features[key] = value
        return value

    def history(self, scan: Scan, week: int | None, notes: list[str], cancel: CancelFlag | None = None):
        """The rat's earlier sessions for the readout (readout/history.py); one that cannot be read is
        left out with a note."""

        earlier = []
        for w, ref in earlier_sessions(scan.paths.get("T1w"), scan.subject, scan.session):
            check_cancel(cancel, "inference")
            try:
                earlier.append((w, ref.session, self._features_of_session(ref, cancel)))
            except (InputError, OSError, ValueError) as exc:
                notes.append(
                    f"the rat's earlier session {ref.session} could not be read ({exc}); the response is read without it"
                )
        return history_of(week, earlier)

    def predict(
        self,
        scan: Scan,
        tta: bool = False,
        postprocess: PostProcess | None = None,
        progress: ProgressFn | None = None,
        cancel: CancelFlag | None = None,
        keep_probability: bool = True,
    ) -> Prediction:
        steps = self.steps(scan, tta=tta, postprocess=postprocess, cancel=cancel, keep_probability=keep_probability)
        return drain(steps, progress)

    def steps(
        self,
        scan: Scan,
        tta: bool = False,
        postprocess: PostProcess | None = None,
        cancel: CancelFlag | None = None,
        keep_probability: bool = True,
        read_history: bool = True,
    ) -> Generator[Progress, None, Prediction]:
        """`predict` as a generator (for a napari thread_worker): yields `Progress` (batches done of the
        total) and returns the Prediction. Closing the generator between batches stops the work.

        With `read_history=False` the readout reads this scan alone and, at a follow-up scan in a study,
        marks the response `pending`: the mask can go on screen before the rat's earlier sessions are
        looked up and segmented, and `complete_response` finishes the reading."""
        t0 = time.perf_counter()
        self.events = []
        post, scan = postprocess or PostProcess.from_card(self.card), as_read(self.card, scan)
        x, geometry = model_slices(scan.channels(), scan.affine, self.card, scan.stand_ins)
        t1 = time.perf_counter()
        flips = TTA_FLIPS if tta else TTA_FLIPS[:1]
        masks, arms, bios, *livers = yield from self._run_all(x, flips, cancel)  # (F, N, H, W), (F, N, 4), (F, N, 2)
        t2 = time.perf_counter()

        prob_disp = geometry.display_probability(masks)  # (N, rows, cols)
        spread_disp = geometry.to_display_grid(masks.std(0)) if tta else None
        probability = geometry.to_source(prob_disp)
        liver = _on_source(livers, geometry)
        mask, left_out = post.apply_counted(probability, scan.affine, liver)
        off_liver = volume_mm3(left_out, scan.affine) if left_out is not None else 0.0
        tumor_mm3 = volume_mm3(mask, scan.affine)
        mask_disp, _ = to_display(mask, scan.affine)
        week = week_of(scan.paths.get("T1w"), scan.subject, scan.session)
        agg = aggregate_scan(prob_disp, mask_disp, arms, bios)
        notes = scan_notes(self.card, scan) + list(geometry.notes)
        if off_liver > 0:
            notes.append(left_out_note(off_liver, tumor_mm3))
        if week == 0:
            notes.append(BASELINE_NOTE)
        if not agg.has_tumor and not scan.stand_ins:
            notes.append(
                "no tumor found: arm probabilities are the mean over all slices; viability and apoptosis are not estimated"
            )
        largest = self.card.postprocess.get("largest_liver_cm3")  # of the training sessions (liver_extent.py)
        unlike = None if liver is None else unlike_world_note(liver_cm3(liver, scan.affine), largest)
        response = self._response(scan, mask, agg, week, tta, post, read=not unlike)
        if unlike:
            notes.append(unlike)
            response = response.unread(UNLIKE_WORLD)
        elif scan.stand_ins and self.readout_for(scan) is None:  # a subset that cannot carry the response
            if reads_subsets(self.card):
                notes.append(unread_response_note(self.model, scan.stand_ins))
            response = response.unread(MISSING_SEQUENCE)
        pixel_mm2 = geometry.display_spacing[1] * geometry.display_spacing[2]
        slice_unc, unc, method = mask_uncertainty(prob_disp, spread_disp)
        slices = SliceTable(
            index=geometry.display_slice_to_source_index(),
            tumor_probability=prob_disp.reshape(len(prob_disp), -1).max(1).astype(np.float64),
            tumor_area_mm2=(mask_disp.reshape(len(mask_disp), -1).sum(1) * pixel_mm2).astype(np.float64),
            arm_probabilities=arms.mean(0).astype(np.float64),
            uncertainty=slice_unc,
        )
        t3 = time.perf_counter()
        run = RunInfo(
            model_id=self.model.model_id,
            device=str(self.device),
            precision=self.precision,
            batch_size=self.batch_size,
            backend=self.backend,
            tta=tta,
            postprocess=post.as_dict(),
            timings={"preprocess": t1 - t0, "network": t2 - t1, "postprocess": t3 - t2, "total": t3 - t0},
            events=list(self.events),
        )
        prediction = Prediction(
            subject=scan.subject,
            session=scan.session,
            week=week,
            mask=mask,
            probability=probability if keep_probability else None,
            tumor_volume_mm3=tumor_mm3,
            longest_diameter_mm=longest_axial_diameter_mm(mask, scan.affine),
            uncertainty=unc,
            uncertainty_method=method,
            response=response,
            slices=slices,
            run=run,
            notes=notes,
            sequences=held_subset(scan.stand_ins),
            left_out=left_out if off_liver > 0 else None,
        )
        return self.complete_response(prediction, scan, cancel) if read_history else prediction

    def readout_for(self, scan: Scan):
        """The readout for the sequences this scan has (None: the network's heads, or no reading at all)."""
        scan = as_read(self.card, scan)
        if not scan.stand_ins:
            return self.model.readout
        return subset_readout(self.model, scan.stand_ins)

    def _response(self, scan: Scan, mask, agg, week: int | None, tta: bool, post: PostProcess, read=True) -> Response:
        """The network heads' reading (slices weighted by tumor content) or, with a readout, the readout's
        reading of the final mask's tumor features (this scan alone; its earlier sessions come later).
        `read=False` (a scan the response is withheld from): no features are read, none kept for later."""
        arms = list(self.card.arms)
        readout = self.readout_for(scan) if read else None
        features = tumor_features(scan, mask) if readout is not None else None
        if features is None:
            spread = agg.arm_spread if tta else np.zeros(len(agg.arm_probabilities))
            return Response(arms, agg.arm_probabilities, agg.viability, agg.apoptosis, spread, source="network")
        if not tta and post.as_dict() == PostProcess.from_card(self.card).as_dict():
            key = self._file_key(scan.paths.get("T1w"))
            if key:
                self._session_features[key] = features  # a later session of this rat may read it
        reading = readout.read(features)
        return Response(
            arms,
            reading.arm_probabilities,
            reading.viability,
            reading.apoptosis,
            np.zeros(len(reading.arm_probabilities)),  # one mask, one reading: no TTA spread for the readout
            source="readout",
            # a follow-up scan: the rat's earlier sessions are still to be looked up
            pending=readout.reads_history and week is not None and week > 0,
            tumor_features=features,
        )

    def complete_response(self, prediction: Prediction, scan: Scan, cancel: CancelFlag | None = None) -> Prediction:
        """The prediction with its arm and histology read beside the rat's earlier sessions (each segmented
        once per engine), when `steps(read_history=False)` left them pending; otherwise as it is."""
        response = prediction.response
        readout = self.readout_for(scan)
        if not response.pending or readout is None or response.tumor_features is None:
            return prediction
        t0 = time.perf_counter()
        notes = list(prediction.notes)
        reading = readout.read(response.tumor_features, self.history(scan, prediction.week, notes, cancel))
        if reading.sessions:
            notes.append(f"response read with the rat's earlier sessions {', '.join(reading.sessions)}")
        seconds = time.perf_counter() - t0
        timings = prediction.run.timings | {
            "earlier_sessions": seconds,
            "total": prediction.run.timings["total"] + seconds,
        }
        return replace(
            prediction,
            response=response.with_reading(reading),
            run=replace(prediction.run, timings=timings),
            notes=notes,
        )


def load_engine(model_spec: str | Path | None, device: str = "auto", backend: str = "auto") -> Engine:
    """A model (folder, file, or None for the shipped default) loaded and placed on a device."""
    return Engine(load_model(model_spec), device=device, backend=backend)


def predict(
    scan: Scan,
    model: LoadedModel | None = None,
    device: str = "auto",
    tta: bool = False,
    batch_size: int | None = None,
    precision: str = "auto",
    postprocess: PostProcess | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFlag | None = None,
) -> Prediction:
    """One-off convenience: load (default) model, place it, predict one scan."""
    engine = Engine(model or load_model(None), device=device, precision=precision, batch_size=batch_size)
    return engine.predict(scan, tta=tta, postprocess=postprocess, progress=progress, cancel=cancel)


def _on_source(livers: list[np.ndarray], geometry) -> np.ndarray | None:
    """The anatomy head's liver probability on the scan's grid, or None for a network without one."""
    return geometry.to_source(geometry.display_probability(livers[0])) if livers else None


def _torch():
    """The torch backend's module, imported when torch runs the network (or must name the device)."""
    from napari_hcc.inference import torch_runner  # noqa: PLC0415 - lazy: torch only when it is needed

    return torch_runner


def _default_batch(backend: str, device_type: str) -> int:
    """Slices per batch: 32 on a GPU, 16 for torch on a CPU; 4 for an exported graph, which runs as fast
    in batches of 4 as of 15 but holds a third of the memory (docs/benchmarks.md)."""
    if device_type != "cpu":
        return 32
    return 16 if backend == "torch" else 4
