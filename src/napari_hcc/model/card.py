"""The model card: everything needed to run a checkpoint correctly, as plain JSON beside its weights.

Architecture, channel order, input grid and spacing, normalisation, class names, post-processing
defaults, the training-data fingerprint, metrics and version. `predict` takes all of its choices
from here, so a model trained at another pixel size or with other sequences is run the way it was
trained (or refused, when its channels are not ours).
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from napari_hcc.errors import InputError
from napari_hcc.vocabulary import ARMS, BIOMARKERS, SEQUENCE_ROLES

CARD_FORMAT = "napari-hcc model card"
CARD_SCHEMA = 1


@dataclass
class ModelCard:
    name: str = "hcc-unetpp-effb0"
    version: str = "0.0.0"
    trained: bool = False
    description: str = ""
    created: str = ""
    architecture: dict = field(default_factory=lambda: dict(DEFAULT_ARCHITECTURE))
    channels: list[str] = field(default_factory=lambda: list(SEQUENCE_ROLES))
    #: axial slices in the display frame (rows anterior->posterior, columns the animal's right->left)
    input: dict = field(
        default_factory=lambda: {
            "frame": "axial slices; rows anterior to posterior, columns right to left (radiological)",
            "pixel_spacing_mm": [0.375, 0.375],  # a 48 mm rat field of view = 128 px: see docs/model.md
            "spacing_tolerance": 0.1,  # relative: closer than this, slices are used as they are
            "size_multiple": 32,  # U-Net++ depth 5: pad each side up to a multiple of 32
            "max_size": 384,  # a field of view larger than the model's is downsampled to this many pixels
        }
    )
    normalisation: dict = field(
        default_factory=lambda: {
            "method": "percentile",
            "low": 1.0,
            "high": 99.0,
            "clip": [-0.5, 2.0],
            "note": "each sequence of each scan: (x - p_low) / (p_high - p_low), clipped",
        }
    )
    arms: list[str] = field(default_factory=lambda: list(ARMS))
    biomarkers: list[str] = field(default_factory=lambda: list(BIOMARKERS))
    threshold: float = 0.5
    postprocess: dict = field(default_factory=lambda: {"min_component_mm3": 1.0, "fill_holes": True})
    training: dict = field(default_factory=dict)  # studies, fingerprint, seeds, epochs, time taken
    metrics: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)  # file, sha256, dtype, tensors
    #: the response readout (readout/stored.py): features, fitting set, cross-validated scores; {} = none
    readout: dict = field(default_factory=dict)
    #: graphs exported from these weights for the CPU backends (model/export.py): {"onnx": {file, sha256, ...}}
    exported: dict = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        digest = str(self.weights.get("sha256", ""))[:8]
        return (
            f"{self.name}@{self.version}" + (f"+{digest}" if digest else "") + ("" if self.trained else " (untrained)")
        )

    def for_new_model(self, version: str | None = None, how: str | None = None) -> ModelCard:
        """A copy for a new model folder: `version` (None: the same), no creation date yet, and `how` the new
        model differs added to the description."""
        card = copy.deepcopy(self)
        card.version, card.created = version or card.version, None
        if how:
            card.description = f"{card.description}; {how}"
        return card

    def to_json(self) -> str:
        return (
            json.dumps({"format": CARD_FORMAT, "schema": CARD_SCHEMA, **asdict(self)}, indent=2, sort_keys=False) + "\n"
        )

    @classmethod
    def from_dict(cls, data: dict, source: str | Path = "model card") -> ModelCard:
        if not isinstance(data, dict) or data.get("format") != CARD_FORMAT:
            raise InputError(f'{source} is not a napari-hcc model card (no "format": "{CARD_FORMAT}").')
        if int(data.get("schema", 0)) > CARD_SCHEMA:
            raise InputError(
                f"{source} uses model-card schema {data['schema']}; this napari-hcc reads schema {CARD_SCHEMA} (update napari-hcc)."
            )
        known = set(cls.__dataclass_fields__)
        card = cls(**{k: v for k, v in data.items() if k in known})
        if list(card.channels) != list(SEQUENCE_ROLES):
            raise InputError(
                f"{source} expects input channels {card.channels}; napari-hcc provides {list(SEQUENCE_ROLES)}."
            )
        if len(card.arms) != int(card.architecture.get("arm_classes", 4)):
            raise InputError(
                f"{source} names {len(card.arms)} arms but its arm head has {card.architecture.get('arm_classes')} outputs."
            )
        if len(card.biomarkers) != int(card.architecture.get("biomarkers", 2)):
            raise InputError(
                f"{source} names {len(card.biomarkers)} biomarkers but its head has {card.architecture.get('biomarkers')} outputs."
            )
        return card

    @classmethod
    def from_json(cls, text: str, source: str | Path = "model card") -> ModelCard:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{source} is not valid JSON (line {exc.lineno}: {exc.msg}).") from None
        return cls.from_dict(data, source)


DEFAULT_ARCHITECTURE = {
    "family": "UnetPlusPlus",
    "encoder": "efficientnet-b0",
    "encoder_depth": 5,
    "decoder_channels": [256, 128, 64, 32, 16],
    "in_channels": 3,
    "classes": 1,
    "arm_classes": 4,
    "arm_dropout": 0.5,  # as in the paper; 0.2 let the arm head memorise the 24 training rats
    "arm_pooling": "tumor",  # "tumor": tumor-weighted average of the deepest features; "average": the paper's global average
    "biomarkers": 2,
    "biomarker_hidden": 64,
    "anatomy": [],  # the classes of the anatomy head (vocabulary.ANATOMY); [] = no anatomy head (models before 2.0)
}
