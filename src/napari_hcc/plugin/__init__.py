"""napari's npe2 contributions without napari imports: reader, writer, layer data, sample data."""
