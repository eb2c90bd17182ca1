#!/usr/bin/python3
"""Checks eventshop's machine-readable contract, and data against it.

usage: tests/contract/validate.py [--schemas DIR] [--events PATH]... [--http FILE]...
                                  [--no-schema-check] [--verbose]

(a) First, every file in schemas/ is checked (skipped with
--no-schema-check, e.g. when an earlier run did it):
  - envelope.v1.json and events/<Type>.v<N>.json are valid JSON Schema
    2020-12 (against the meta-schema python3-jsonschema ships), their $id
    matches their file name, they keep to keywords that mean the same in
    draft-07 (AsyncAPI tools read them as draft-07), and their examples
    validate;
  - openapi*.yaml are OpenAPI 3.1 documents. Debian has no OpenAPI
    validator package (python3-openapi-spec-validator is not in bookworm),
    so this script checks the structure itself (fields, path templates
    against path parameters, response codes, unique operationIds, tags,
    every $ref resolving) and every schema in them against the JSON Schema
    2020-12 meta-schema;
  - asyncapi.yaml is checked likewise for AsyncAPI 3.0 (channels,
    operations referring to their channel's messages, Kafka bindings), and
    against the contract: one message per event type on its topic, with the
    envelope, the data schema, the Kafka key and the headers; partition
    counts equal deploy/topics.txt.

(b) --events PATH (a file, a directory searched for *.json, *.jsonl,
*.ndjson, or - for standard input): CloudEvents, one JSON per line (a file
holding one pretty-printed object or an array works too). Each is checked
against envelope.v1.json, its data against the schema its dataschema names,
and against the rules JSON Schema cannot state (subject = partitionkey =
correlationid = data.orderId, totals, duplicate skus, one traceparent per
saga, causation within the saga, an order ends once, each email once). A
line may also be a record as `kcat -C -J` prints it ({"topic", "key",
"headers", "payload", ...}): then the Kafka key and headers are checked
too, and a record of a dlq topic is checked as a dead letter.

(c) --http FILE: recorded HTTP exchanges, one JSON per line:
  {"method": "POST", "path": "/orders", "status": 202,
   "contentType": "application/json", "body": {...},
   "headers": {"Location": "..."},          (optional: checked when given)
   "service": "order-service"}              (optional: which document)
Each response body is validated against the OpenAPI schema for that path,
method and status (the exact code, then 4XX/5XX, then default, which
stands for errors only), plus what JSON Schema cannot state (problem status
= HTTP status, Location = /orders/{orderId}, list order and filters,
totals, /stats sums). A daemon without a document of its own is checked on
/livez, /readyz and /metrics only.

Every failure is printed on a line of its own, with the event id or the
exchange; the last line is a one-line summary. Exit status: 0 when
everything passed, 1 when anything failed, 2 on a usage error or a missing
package.

Needs only Debian packages: python3, python3-jsonschema, python3-yaml, run
by Debian's /usr/bin/python3 (where those are installed). jsonschema 4.10
(bookworm) and later versions (with the referencing library) both work.

The checks are in the package validator/ next to this script, a module
per concern (validator/__init__.py lists them); this script is the
command line.
"""

import argparse
import sys
from pathlib import Path

try:
    import jsonschema  # noqa: F401 (the validator package needs both)
    import yaml  # noqa: F401
except ImportError as exc:  # pragma: no cover
    sys.stderr.write(
        "validate.py: %s\n"
        "validate.py: needs the Debian packages python3-jsonschema and python3-yaml:\n"
        "  apt-get install python3-jsonschema python3-yaml\n"
        "and Debian's interpreter (/usr/bin/python3), where they are installed\n" % exc)
    sys.exit(2)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validator.common import ROOT, Report, die  # noqa: E402 (after the check above)
from validator.events import run_events  # noqa: E402
from validator.exchanges import run_http  # noqa: E402
from validator.schemas import check_schemas  # noqa: E402
from validator.store import Store  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Check eventshop's schemas/ and events or HTTP exchanges against them.")
    ap.add_argument("--schemas", default=str(ROOT / "schemas"),
                    help="the schemas directory (default: %(default)s)")
    ap.add_argument("--events", action="append", default=[], metavar="PATH",
                    help="a file of CloudEvents (one JSON per line), a directory of such "
                    "files, or - for standard input; repeatable")
    ap.add_argument("--http", action="append", default=[], metavar="FILE",
                    help="a file of recorded HTTP exchanges (one JSON per line); repeatable")
    ap.add_argument("--no-schema-check", action="store_true",
                    help="only load schemas/, do not check it (when it was checked already, "
                    "e.g. by an earlier run)")
    ap.add_argument("-v", "--verbose", action="store_true", help="also list what passed")
    args = ap.parse_args(argv)

    schemas_dir = Path(args.schemas)
    if not schemas_dir.is_dir():
        die("no schemas directory %s" % schemas_dir)
    report = Report(args.verbose)
    store = Store()
    check_schemas(store, schemas_dir, report, check=not args.no_schema_check)
    store.asyncapi_uri = next((u for u in store.docs if u.startswith("file:")
                               and u.endswith("/asyncapi.yaml")), None)
    if report.failures and (args.events or args.http):
        print("the schemas themselves fail: events and exchanges not checked")
    else:
        if args.events:
            run_events(store, args.events, report)
        if args.http:
            run_http(store, args.http, report)
    print(report.summary())
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
