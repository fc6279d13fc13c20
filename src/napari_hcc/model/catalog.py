"""Where models live and which there are: the shipped default, the user's models folder, the model list.

No torch here: the review widget lists the models on napari's Qt thread."""

from __future__ import annotations

import os
from pathlib import Path

from napari_hcc.errors import InputError
from napari_hcc.io.user_paths import user_data_folder
from napari_hcc.model.card import ModelCard

WEIGHTS_FILE = "model.safetensors"


CARD_FILE = "model.json"


#: where the shipped default model lives inside the package
PACKAGED_MODELS = Path(__file__).resolve().parent.parent / "models"


DEFAULT_MODEL_NAME = "default"


def default_model_folder() -> Path:
    return PACKAGED_MODELS / DEFAULT_MODEL_NAME


def user_models_folder() -> Path:
    """Where new model versions go (fine-tuning): $NAPARI_HCC_MODELS or ~/.local/share/napari-hcc/models."""
    env = os.environ.get("NAPARI_HCC_MODELS")
    if env:
        return Path(env)

    return user_data_folder() / "models"


def list_models() -> list[tuple[str, Path | None, ModelCard | None, str]]:
    """(name, folder, card, problem) for the default model and every model in the user folder."""
    rows = []
    folder = default_model_folder()
    if (folder / WEIGHTS_FILE).exists():
        rows.append(_describe(DEFAULT_MODEL_NAME, folder))
    else:
        rows.append((DEFAULT_MODEL_NAME, None, untrained_card(), ""))
    user = user_models_folder()
    if user.is_dir():
        for sub in sorted(p for p in user.iterdir() if (p / WEIGHTS_FILE).exists()):
            rows.append(_describe(sub.name, sub))
    return rows


def untrained_card() -> ModelCard:
    return ModelCard(description="untrained network (seeded random weights): the pipeline runs, the masks mean nothing")


def _describe(name: str, folder: Path):
    try:
        return (
            name,
            folder,
            ModelCard.from_json((folder / CARD_FILE).read_text(encoding="utf-8"), folder / CARD_FILE),
            "",
        )
    except (OSError, InputError) as exc:
        return name, folder, None, str(exc)
