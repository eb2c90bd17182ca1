"""scripts/check-k8s's command line (scripts/check-k8s --help)."""

import argparse
import sys
from pathlib import Path

PROG = "check-k8s"
ROOT = Path(__file__).resolve().parent.parent.parent


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog=PROG, description="Checks deploy/k8s/ without a cluster (scripts/check-k8s).")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true",
                      help="write the generated manifests again, then check")
    mode.add_argument("--self-test", action="store_true",
                      help="show that each check fails on a broken copy of its files")
    mode.add_argument("--vendor", nargs=3, metavar=("KIND", "UPSTREAM", "OUT"),
                      help="make a vendored schema file (kubernetes or crd) from upstream's")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="with --self-test: print every check's output")
    return parser.parse_args(argv)


def run(root, write):
    """Prints every check's outcome; returns the exit status."""
    # Imported here so that a missing module is one FAIL line, not a traceback.
    try:
        import jsonschema  # noqa: F401
        import yaml  # noqa: F401
    except ImportError as e:
        print(f"FAIL  {sys.executable} cannot import {e.name}: "
              f"apt-get install python3-yaml python3-jsonschema")
        print(f"{PROG}: FAILED")
        return 1
    from check_compose.project import Project
    from check_compose.report import print_outcomes

    from .checks import run_checks, write_generated

    project = Project(root)
    if write:
        write_generated(project)
    return print_outcomes(run_checks(project), PROG)


def main(argv):
    args = parse_args(argv)
    if args.vendor:
        from .vendor import vendor
        vendor(*args.vendor)
        return 0
    if args.self_test:
        from .selftest import run_self_test
        return run_self_test(ROOT, verbose=args.verbose)
    return run(ROOT, args.write)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
