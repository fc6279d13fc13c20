"""The BIDS JSON sidecar of a simulated image: the sequence as a scanner's converter would describe it,
with the keys `napari-hcc import` writes for real data, so that `simulate --like` reads a simulated
study exactly as it reads a real one."""

from __future__ import annotations

from napari_hcc.simulate.protocol import SequenceProtocol

_SCANNING = {"RARE": "SE", "FLASH": "GR", "bSSFP": "GR"}
_DESCRIPTION = {"T1w": "T1", "T2w": "T2", "CE": "T1 post-contrast"}


def sequence_sidecar(role: str, seq: SequenceProtocol, field_t: float, receiver_scale: float) -> dict:
    out = {
        "Manufacturer": "simulated (napari-hcc)",
        "MagneticFieldStrength": field_t,
        "SeriesDescription": f"{_DESCRIPTION[role]} {seq.family} {seq.plane}",
        "PulseSequenceType": seq.family,
        "ScanningSequence": _SCANNING[seq.family],
        "MRAcquisitionType": "3D" if seq.family == "bSSFP" else "2D",
        "RepetitionTime": seq.repetition_time_s,
        "EchoTime": seq.echo_time_s,
        "FlipAngle": seq.flip_angle_deg,
        "EchoTrainLength": seq.echo_train_length,
        "SliceThickness": seq.slice_mm,
        "SpacingBetweenSlices": round(seq.slice_mm + seq.gap_mm, 6),
        "SlicePlane": seq.plane,
        "PhaseEncodingDirection": seq.phase_encoding,
        "ReceiverScale": receiver_scale,
    }
    if seq.bandwidth_hz_per_pixel > 0:
        out["PixelBandwidth"] = seq.bandwidth_hz_per_pixel
    if seq.fat_suppression:
        out["ScanOptions"] = "FS"
    if role == "CE":
        out |= {
            "ContrastBolusIngredient": "GADOLINIUM",
            "ContrastBolusAgent": "Gd-DTPA",
            "ContrastBolusDose_mmol_per_kg": 0.2,
            "ContrastBolusDelay_s": 180,
        }
    return out
