"""The model: its card (no torch), the network, safetensors checkpoints, the model catalogue, devices."""
