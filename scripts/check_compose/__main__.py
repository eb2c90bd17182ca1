"""scripts/check-compose's command line (see __init__.py for what it checks)."""

import argparse
import os
import sys
from pathlib import Path

import check_compose

PROG = "check-compose"
ROOT = Path(__file__).resolve().parent.parent.parent


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog=PROG, description=check_compose.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter, usage=argparse.SUPPRESS)
    parser.add_argument("--self-test", action="store_true",
                        help="show that each check fails on a mutated copy of its files")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="with --self-test: name each test and print every check's output")
    return parser.parse_args(argv)


def build_dir():
    return os.environ.get("BUILD_DIR") or str(ROOT / "build")


def run(root):
    """Prints every check's outcome; returns the exit status."""
    # Imported here so that a missing python3-yaml is one FAIL line, not a traceback.
    try:
        import yaml  # noqa: F401
    except ImportError:
        print(f"FAIL  {sys.executable} cannot import yaml: apt-get install python3-yaml")
        print(f"{PROG}: FAILED")
        return 1
    from .checks import run_checks
    from .project import Project
    from .report import print_outcomes

    os.chdir(root)
    return print_outcomes(run_checks(Project(root), build_dir()), PROG)


def main(argv):
    args = parse_args(argv)
    if args.self_test:
        from .selftest import run_self_test
        return run_self_test(ROOT, build_dir(), verbose=args.verbose)
    return run(ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
