"""Rat-grouped evaluation: scoring, the protocols (held-out study, CV, the paper's leaky protocol), the
size criterion, the histology floor and the report."""
