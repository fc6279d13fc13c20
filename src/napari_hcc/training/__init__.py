"""Training and fine-tuning: the slice dataset, augmentation, losses, rat-grouped splits, the trainer
(hook methods), validation and the saved state."""
