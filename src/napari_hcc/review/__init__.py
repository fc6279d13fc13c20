"""Reviewing without Qt: the training set of corrections, recovery files, the reading queue, mask
editing and the review session the widget keeps."""
