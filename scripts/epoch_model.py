"""A model folder from one epoch of a training run, so an epoch the run did not keep can be read like any model.

`napari-hcc train` keeps the epoch with the best validation score and, in `OUT/training/`, the resumable
state of its last epoch (`state.safetensors`: the network's tensors under `model/`, the optimiser's under
`opt/`). On 2 CPU cores a run is a few epochs, and the development scans, not its few validation rats,
decide between them, so each epoch's state is copied aside while the run goes on and turned into a model
here: the network's tensors from the state, everything else (card, readout, anatomy gate) from a model of
the same run, and a graph made by setting these weights into that model's graph (`model/export.py`).

    python scripts/epoch_model.py --state RUN/training --like RUN --version 2.0.0-dev.6-epoch1 --out MODELS/f1_e1
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.numpy import load_file

from napari_hcc.model.checkpoint import build_network
from napari_hcc.model.export import save_like
from napari_hcc.model.loading import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", required=True, type=Path, help="a run's training/ folder (or a copy of it)")
    parser.add_argument("--like", required=True, help="a model of the same run: its card, readout and graph")
    parser.add_argument("--version", required=True, help="the new model's version")
    parser.add_argument("--out", required=True, type=Path, help="a new model folder")
    args = parser.parse_args()

    like = load_model(args.like)
    tensors = load_file(str(args.state / "state.safetensors"))
    weights = {k.removeprefix("model/"): v for k, v in tensors.items() if k.startswith("model/")}
    net = build_network(like)
    missing, unexpected = net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()}, strict=False)
    if missing or unexpected:
        raise SystemExit(
            f"{args.state} does not hold this network's weights (missing {missing[:3]}, extra {unexpected[:3]})."
        )
    entry = save_like(net, args.like, args.out, args.version, f"weights of the run's state in {args.state}")
    print(f"model {args.out} ({args.version}); graph: {'yes' if entry else 'none (run napari-hcc export)'}")


if __name__ == "__main__":
    main()
