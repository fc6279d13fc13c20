"""Every error napari-hcc raises on purpose, in one place.

`InputError` is a problem with what the user gave (a file, a folder, an option), told in one sentence
that names it: the CLI prints it and exits with 2, napari shows it as a notification. `UsageError` is a
command line that cannot be run as given (the CLI's own). `Cancelled` is
raised between steps of long work when the caller's cancel flag is set (see `progress.py`).
"""

from __future__ import annotations


class InputError(ValueError):
    """A problem with an input file or folder, told in one sentence that names it."""


class UsageError(Exception):
    """A command line that cannot be run as given (`napari-hcc ...`): printed as one sentence, exit code 2."""


class Cancelled(Exception):
    """Raised between steps (batches, scans, epochs) when the caller asked to stop."""
