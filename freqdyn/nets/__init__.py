"""freqdyn.nets."""
