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

from napari_hcc.model.checkpoint import build_network
from napari_hcc.model.export import save_like
from napari_hcc.model.loading import load_model
from napari_hcc.training.averaging import WeightMean


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
    mean = WeightMean()  # the running mean `train --average-from` keeps
    for i, model in enumerate(models, start=1):
        mean.add(build_network(model), i)
    net = mean.network(build_network(first))
    entry = save_like(net, args.model[0], args.out, args.version, f"the mean of the weights of {', '.join(args.model)}")
    print(f"model {args.out} ({args.version}), the mean of {len(models)}; graph: {'yes' if entry else 'none'}")


if __name__ == "__main__":
    main()
