"""freqdyn.predict."""
