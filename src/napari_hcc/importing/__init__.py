"""Import: scanner studies (DICOM, Bruker ParaVision) and loose NIfTI files into a BIDS study."""
