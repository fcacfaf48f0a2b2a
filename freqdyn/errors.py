"""Errors raised on bad input.

Every message names the offending field (dotted path into the case file, e.g.
``network.rho_w.scale``) and states the problem, so a user can fix the file
without reading freqdyn's source.
"""


class CaseError(ValueError):
    """Invalid case or study input; ``field`` is the dotted path of the bad entry."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")
