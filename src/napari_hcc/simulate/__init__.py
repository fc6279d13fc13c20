"""The simulated cohort: biology, anatomy, tumor, MRI physics, rendering, histology, the BIDS study."""
