"""freqdyn.inputs."""
