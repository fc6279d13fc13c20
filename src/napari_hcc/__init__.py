"""napari-hcc: preclinical HCC MRI in rats, in napari and on the command line.

Importing the package is cheap: torch, napari and Qt are imported only where they are used.
"""

__version__ = "0.1.0"
