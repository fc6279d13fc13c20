"""The study's words, each defined once: arms, sequence roles, biomarkers and tissue components; and the
values of the options every face offers (precision, mismatch policy, device kind).

Everything else (the model card, BIDS file names, the simulator, training, evaluation, the layers
napari shows) takes its names from here, so a reader of any file knows they mean the same thing.
"""

from __future__ import annotations

from typing import Literal, get_args

#: the four treatment arms of the study, in the order of the network's arm head
ARMS: tuple[str, ...] = ("Control", "Sorafenib", "NK", "Combination")

#: the MRI sequences of a scan, in the order of the network's input channels
SEQUENCE_ROLES: tuple[str, ...] = ("T1w", "T2w", "CE")
#: the sequence subsets a model trained with sequence dropout reads (each holds a T1w or a T2w)
READABLE_SUBSETS: tuple[tuple[str, ...], ...] = (
    ("T1w", "T2w", "CE"),
    ("T1w", "T2w"),
    ("T2w", "CE"),
    ("T2w",),
    ("T1w",),
)

#: the anatomical planes a sequence's slices can lie in (protocol files, `simulate --plane`)
PLANES: tuple[str, ...] = ("axial", "coronal", "sagittal")


def subset_name(roles) -> str:
    """'T1w+T2w+CE', 'T2w', ...: a subset of sequences in the model's channel order."""
    chosen = set(roles)
    return "+".join(r for r in SEQUENCE_ROLES if r in chosen)


def readable_subsets(held: str) -> list[str]:
    """The readable subsets of the subset `held` ('T1w+T2w', ...), as names, largest first (itself first
    when it is readable)."""
    have = set(held.split("+"))
    return [subset_name(s) for s in READABLE_SUBSETS if set(s) <= have]


def held_subset(missing) -> str:
    """The subset a session really has: every sequence role except the `missing` ones (its stand-ins)."""
    absent = set(missing)
    return subset_name(r for r in SEQUENCE_ROLES if r not in absent)


#: the histology fractions the response panel reports (H&E viable fraction, TUNEL apoptotic fraction)
BIOMARKERS: tuple[str, ...] = ("viability", "apoptosis")

#: the anatomy a network with an anatomy head outlines beside the tumor (training/anatomy.py): liver
#: parenchyma, to tell a tumor in the liver from a bright kidney or gut; the other organs a tumor is
#: mistaken for; "other" is everything else (fat, muscle, bone, lung, outside the body)
ANATOMY: tuple[str, ...] = ("other", "liver", "tumor", "kidney", "gut", "spleen", "vessel")

#: the tissue components of a tumor: the simulator's truth maps and the histology floor
COMPONENTS: tuple[str, ...] = ("viable", "necrosis", "apoptosis", "edema")

# -- the values of options, each a Literal type and the tuple of its values (for argparse and the GUI) --

#: numeric precision of a run: "auto" picks bf16 where the device runs it natively, else fp16 on a GPU, fp32 on a CPU
Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)

#: what runs the network: torch, or the exported graph under OpenVINO or ONNX Runtime (inference/backend_choice.py)
Backend = Literal["auto", "torch", "openvino", "onnxruntime"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)

#: sequences on different voxel grids: resample them onto the T1w grid (and say so), or refuse the scan
MismatchPolicy = Literal["resample", "refuse"]
MISMATCH_POLICIES: tuple[MismatchPolicy, ...] = get_args(MismatchPolicy)

#: how the T2w and CE are registered to the T1w when asked (`--register`, the GUI's Align option)
RegistrationKind = Literal["rigid", "affine"]
REGISTRATION_KINDS: tuple[RegistrationKind, ...] = get_args(RegistrationKind)

#: the kinds of compute device a user picks from ("cuda:N" is accepted too, where it is typed)
DeviceKind = Literal["auto", "cuda", "mps", "cpu"]
DEVICE_KINDS: tuple[DeviceKind, ...] = get_args(DeviceKind)
