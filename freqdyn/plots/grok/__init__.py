"""Figures of the grokking studies, one module per study module of freqdyn.grok."""
