"""One scan in, one `Prediction` out: model slices, the engine, post-processing, measurements, many
scans into one output folder."""
