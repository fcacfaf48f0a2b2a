"""Errors, and the exit codes of every ``freqdyn`` command.

Every message names the offending field (dotted path into the input file, e.g.
``network.rho_w.scale``, or an option such as ``--out``) and says what to do, so a user can
fix the input without reading freqdyn's source.

Exit codes (the same for every command):

====  ==============================================================================
code  meaning
====  ==============================================================================
0     done, and the claim held (commands without a claim: done)
1     done, and the claim failed (a study's or experiment's ``claim_holds`` is false)
2     bad input: an :class:`InputError` (one line on stderr, naming the field or file)
3     diverged: a :class:`TrainingDiverged` (one line, naming the last good checkpoint)
130   interrupted (Ctrl-C); the line says where the last checkpoint is and how to resume
====  ==============================================================================
"""

EXIT_OK = 0
EXIT_CLAIM_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130


class InputError(ValueError):
    """Invalid input (case, study, experiment, option, file); ``field`` names the bad entry."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class AccuracyWarning(UserWarning):
    """A result's own error estimate exceeds what its method is meant to deliver."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN/inf or grew past the divergence limit; the message names the step,
    the limit and the last good checkpoint."""
