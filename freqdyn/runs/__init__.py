"""freqdyn.runs."""
