"""napari widgets: thin, turning core results into layers and user actions into core calls."""
