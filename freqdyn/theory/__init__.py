"""freqdyn.theory."""
