"""One model whose weights are the mean of several models' from one training trajectory (stochastic weight
averaging over epochs, a "model soup").

Epochs of one run (or of runs that continue one another) lie close in weight space; their mean is often
flatter and steadier on data unlike the training set than any one of them. On 2 CPU cores the real
healthy rat's false tumor swung four-fold between consecutive epochs, which is what this is for. The
BatchNorm running statistics are averaged too (the models are close, so this is near what recomputing
them would give). Card, readout and graph come from the first model, the graph given the mean weights.

    python scripts/average_models.py --model A --model B [--model C ...] --version V --out FOLDER
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from napari_hcc.model.checkpoint import build_network
from napari_hcc.model.export import save_like
from napari_hcc.model.loading import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="a model folder; two or more")
    parser.add_argument("--version", required=True, help="the new model's version")
    parser.add_argument("--out", required=True, type=Path, help="a new model folder")
    args = parser.parse_args()
    if len(args.model) < 2:
        raise SystemExit("give two or more models to average.")

    models = [load_model(m) for m in args.model]
    first = models[0]
    if any(set(m.state) != set(first.state) for m in models[1:]):
        raise SystemExit("the models are not built alike: their tensors differ.")
    mean = {
        k: np.mean([m.state[k] for m in models], axis=0).astype(v.dtype) if v.dtype.kind == "f" else v
        for k, v in first.state.items()
    }
    net = build_network(first)
    net.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in mean.items()})
    entry = save_like(net, args.model[0], args.out, args.version, f"the mean of the weights of {', '.join(args.model)}")
    print(f"model {args.out} ({args.version}), the mean of {len(models)}; graph: {'yes' if entry else 'none'}")


if __name__ == "__main__":
    main()
