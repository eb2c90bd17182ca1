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


def print_outcomes(outcomes, prog, out=sys.stdout):
    """Prints every outcome, then `PROG: FAILED` or `PROG: all checks passed`;
    returns the exit status (1 when a check failed)."""
    failed = False
    for outcome in outcomes:
        print_outcome(outcome, out)
        failed = failed or outcome.status == "FAIL"
    print(f"{prog}: FAILED" if failed else f"{prog}: all checks passed", file=out)
    return 1 if failed else 0
