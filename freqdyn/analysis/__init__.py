"""freqdyn.analysis."""
