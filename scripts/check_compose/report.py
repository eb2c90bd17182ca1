"""A check's outcome, and the line check-compose prints for it."""

import sys
from dataclasses import dataclass, field


@dataclass
class Outcome:
    """What one check found.

    check:    the check's stable name (the self-test refers to checks by it)
    title:    what the check guarantees, printed after OK, FAIL or SKIP
    problems: one line per thing found wrong; none means OK
    skipped:  the check could not run here (the title says why)
    """

    check: str
    title: str
    problems: list = field(default_factory=list)
    skipped: bool = False

    @property
    def status(self):
        if self.skipped:
            return "SKIP"
        return "FAIL" if self.problems else "OK"


def skipped(check, title):
    return Outcome(check, title, skipped=True)


def print_outcome(outcome, out=sys.stdout):
    """`OK    title`, `SKIP  title`, or `FAIL  title` and a line per problem."""
    print(f"{outcome.status:<6}{outcome.title}", file=out)
    for problem in outcome.problems:
        print(f"      {problem}", file=out)
    out.flush()
