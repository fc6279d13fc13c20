"""Files in and out: NIfTI volumes and their checks, geometry and orientation, scans, study discovery,
BIDS names, what a study says about its sessions, atomic writes and hashes, the user's folders."""
