"""(a) the schema files: each file of schemas/ to its check; the event and
envelope schemas."""

import re

import yaml

from .asyncapi import check_asyncapi
from .common import DRAFT7_COMPATIBLE, DRAFT_2020_12, EVENT_TYPES, ROOT, die, rel
from .loading import file_uri, load_document
from .openapi import check_openapi
from .store import check_meta, schema_errors, walk_schema


def check_event_schema_file(store, path, doc, envelope):
    """envelope.v1.json or events/<Type>.v<N>.json."""
    problems = []
    if not isinstance(doc, dict):
        return ["not a JSON object"]
    if doc.get("$schema") != DRAFT_2020_12:
        problems.append("$schema is %r, expected %r" % (doc.get("$schema"), DRAFT_2020_12))
    problems += check_meta(doc, "schema", draft7_too=True)
    if envelope:
        m = re.fullmatch(r"envelope\.v([1-9][0-9]*)\.json", path.name)
        want = "urn:eventshop:schema:envelope:%s" % (m.group(1) if m else "?")
    else:
        m = re.fullmatch(r"([A-Z][A-Za-z]+)\.v([1-9][0-9]*)\.json", path.name)
        if not m:
            return problems + ["file name is not <Type>.v<N>.json"]
        want = "urn:eventshop:schema:%s:%s" % (m.group(1), m.group(2))
        if m.group(1) not in EVENT_TYPES:
            problems.append("%s is not an event type of the contract" % m.group(1))
    if doc.get("$id") != want:
        problems.append("$id is %r, expected %r (the dataschema that names it)" % (
            doc.get("$id"), want))

    def visit(sub, where):
        extra = sorted(set(sub) - DRAFT7_COMPATIBLE)
        if extra:
            problems.append("%s: keywords %s are not in the draft-07-compatible subset "
                            "(AsyncAPI reads these schemas as draft-07)" % (where, extra))
    walk_schema(doc, visit)
    if not envelope and doc.get("additionalProperties") is not True:
        problems.append("additionalProperties must be true (forward compatibility: "
                        "consumers ignore unknown fields)")
    if not problems:
        validator = store.validator(file_uri(path))
        for i, example in enumerate(doc.get("examples", [])):
            problems += ["examples/%d: %s" % (i, p) for p in schema_errors(validator, example)]
    return problems


def check_schemas(store, schemas_dir, report, check=True):
    files = sorted(p for p in schemas_dir.rglob("*") if p.is_file()
                   and p.suffix in (".json", ".yaml", ".yml"))
    if not files:
        die("no schema files in %s" % schemas_dir)
    loaded = []
    for p in files:
        try:
            doc = load_document(p)
        except (ValueError, yaml.YAMLError, UnicodeDecodeError) as exc:
            report.item("schemas", rel(p), ["cannot be read: %s" % exc])
            continue
        store.add(p, doc)
        loaded.append((p, doc))
    if not check:
        return
    envelope_types = None
    event_files = set()
    for p, doc in loaded:
        name = p.name
        if p.suffix == ".json" and p.parent.name == "events":
            problems = check_event_schema_file(store, p, doc, envelope=False)
            event_files.add(p.name.split(".")[0])
        elif p.suffix == ".json" and name.startswith("envelope."):
            problems = check_event_schema_file(store, p, doc, envelope=True)
            envelope_types = set(doc.get("properties", {}).get("type", {}).get("enum", []))
        elif p.suffix in (".yaml", ".yml") and name.startswith("openapi"):
            problems = check_openapi(store, p, doc)
        elif p.suffix in (".yaml", ".yml") and name.startswith("asyncapi"):
            problems = check_asyncapi(store, p, doc, ROOT / "deploy" / "topics.txt")
        else:
            problems = ["not a kind of file this check knows (envelope.v<N>.json, "
                        "events/<Type>.v<N>.json, openapi*.yaml, asyncapi*.yaml)"]
        report.item("schemas", rel(p), problems)
    contract = set(EVENT_TYPES)
    problems = []
    if envelope_types != contract:
        problems.append("envelope type enum %s differs from the contract's types" % (
            sorted(envelope_types or [])))
    if event_files != contract:
        problems.append("schemas/events/ has %s, the contract's types are %s" % (
            sorted(event_files), sorted(contract)))
    report.item("schemas", "schemas/ (every contract event type has a schema)", problems)
