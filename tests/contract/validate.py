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
"""

import argparse
import copy
import json
import re
import sys
import urllib.parse
import warnings
from pathlib import Path

try:
    import jsonschema
    import yaml
except ImportError as exc:  # pragma: no cover
    sys.stderr.write(
        "validate.py: %s\n"
        "validate.py: needs the Debian packages python3-jsonschema and python3-yaml:\n"
        "  apt-get install python3-jsonschema python3-yaml\n"
        "and Debian's interpreter (/usr/bin/python3), where they are installed\n" % exc)
    sys.exit(2)

from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.exceptions import SchemaError

try:  # jsonschema >= 4.18
    import referencing
    import referencing.jsonschema
    HAVE_REFERENCING = True
except ImportError:  # jsonschema 4.10 (Debian bookworm): RefResolver
    HAVE_REFERENCING = False

ROOT = Path(__file__).resolve().parents[2]

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

# The contract's event types, their producers and topics (contract.md,
# "Services" and "Topics").
EVENT_TYPES = {
    "OrderPlaced": ("order-service", "orders"),
    "OrderConfirmed": ("order-service", "orders"),
    "OrderCancelled": ("order-service", "orders"),
    "PaymentProcessed": ("payment-service", "payments"),
    "PaymentFailed": ("payment-service", "payments"),
    "PaymentRefunded": ("payment-service", "payments"),
    "InventoryReserved": ("inventory-service", "inventory"),
    "InventoryRejected": ("inventory-service", "inventory"),
    "InventoryReleased": ("inventory-service", "inventory"),
    "EmailSent": ("email-service", "notifications"),
}
SERVICES = ["order-service", "payment-service", "inventory-service", "email-service",
            "analytics-service"]
DEFAULT_TOPICS = {"orders", "payments", "inventory", "notifications"}
CE_HEADERS = ["content-type", "ce_specversion", "ce_id", "ce_type", "ce_source"]
DLQ_HEADERS = ["dlq.error", "dlq.original.topic", "dlq.original.partition",
               "dlq.original.offset", "dlq.attempts", "dlq.service", "dlq.time"]
EVENT_MAX_BYTES = 1024 * 1024  # ES_EVENT_MAX_BYTES
ORDERS_DEFAULT_LIMIT = 20  # GET /orders without limit (openapi.yaml)
# Served by every daemon (contract.md, "Services"): a service without an
# OpenAPI document of its own is checked on these against openapi.yaml.
COMMON_PATHS = {"/livez", "/readyz", "/metrics"}

# Keywords whose meaning is the same in draft-07 and 2020-12: the event
# and envelope schemas keep to these, so that AsyncAPI 3.0 tools (which
# read JSON Schema draft-07) see what a 2020-12 validator sees.
DRAFT7_COMPATIBLE = {
    "$schema", "$id", "$ref", "$comment", "title", "description", "default", "examples",
    "readOnly", "writeOnly", "type", "enum", "const", "multipleOf", "maximum",
    "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern",
    "items", "maxItems", "minItems", "uniqueItems", "contains", "maxProperties",
    "minProperties", "required", "properties", "patternProperties", "additionalProperties",
    "propertyNames", "if", "then", "else", "allOf", "anyOf", "oneOf", "not", "format",
    "contentMediaType", "contentEncoding",
}
# Keywords whose value is a map of name -> schema, a schema, or a list of schemas.
SCHEMA_MAP_KEYWORDS = {"properties", "patternProperties", "$defs", "definitions",
                       "dependentSchemas"}
SCHEMA_KEYWORDS = {"additionalProperties", "propertyNames", "items", "contains", "if", "then",
                   "else", "not", "unevaluatedItems", "unevaluatedProperties",
                   "additionalItems", "contentSchema"}
SCHEMA_LIST_KEYWORDS = {"allOf", "anyOf", "oneOf", "prefixItems"}

HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{12}$")


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------
class Report:
    def __init__(self, verbose):
        self.verbose = verbose
        self.counts = {}  # section -> [checked, failed]
        self.failures = 0

    def item(self, section, where, problems):
        """Counts one checked item of section; problems is a list of strings."""
        c = self.counts.setdefault(section, [0, 0])
        c[0] += 1
        if problems:
            c[1] += 1
            self.failures += 1
            for p in problems:
                print("FAIL %s: %s" % (where, p))
        elif self.verbose:
            print("ok   %s" % where)

    def summary(self):
        parts = []
        for section in ("schemas", "events", "http"):
            if section in self.counts:
                checked, failed = self.counts[section]
                parts.append("%s %d checked, %d failed" % (section, checked, failed))
        verdict = "FAILED" if self.failures else "OK"
        return "contract: %s: %s" % ("; ".join(parts), verdict)


def die(msg, status=2):
    sys.stderr.write("validate.py: %s\n" % msg)
    sys.exit(status)


# ---------------------------------------------------------------------------
# Loading: strict JSON (no duplicate keys, no NaN) and YAML (no duplicate keys)
# ---------------------------------------------------------------------------
class DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise DuplicateKey("duplicate key %r" % k)
        obj[k] = v
    return obj


def _no_constant(name):
    raise ValueError("%s is not JSON" % name)


def json_loads(text):
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


class StrictYamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when there
    pass


def _yaml_mapping(loader, node, deep=False):
    mapping = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, "duplicate key %r" % (key,), key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


StrictYamlLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _yaml_mapping)


def load_document(path):
    text = Path(path).read_text(encoding="utf-8")
    if str(path).endswith((".yaml", ".yml")):
        return yaml.load(text, Loader=StrictYamlLoader)  # noqa: S506 (SafeLoader subclass)
    return json_loads(text)


def file_uri(path):
    return Path(path).resolve().as_uri()


# ---------------------------------------------------------------------------
# Validation with a store of every document in schemas/
# ---------------------------------------------------------------------------
def _is_integer(checker, instance):
    # Like jansson's json_is_integer: 1.0 is not an integer. The contract
    # says money is never floating point.
    return isinstance(instance, int) and not isinstance(instance, bool)


StrictValidator = jsonschema.validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer))
# jsonschema picks the validator class again by "$schema" when a $ref enters
# a resource that declares one (every file in schemas/events/ does): make
# that class the strict one too, for this process.
jsonschema.validators.validates(DRAFT_2020_12)(StrictValidator)
FORMAT_CHECKER = jsonschema.FormatChecker()


class Store:
    """Every document of schemas/, by file URI and (schemas) by $id."""

    def __init__(self):
        self.docs = {}  # uri -> contents
        self.paths = {}  # uri -> Path
        self._registry = None

    def add(self, path, doc):
        uri = file_uri(path)
        self.docs[uri] = doc
        self.paths[uri] = Path(path)
        if isinstance(doc, dict) and isinstance(doc.get("$id"), str):
            self.docs[doc["$id"]] = doc
        self._registry = None

    def registry(self):
        if self._registry is None:
            spec = referencing.jsonschema.DRAFT202012
            self._registry = referencing.Registry().with_resources(
                (uri, referencing.Resource(contents=doc, specification=spec))
                for uri, doc in self.docs.items())
        return self._registry

    def validator(self, uri_with_fragment):
        """A validator for the schema at uri#pointer (refs resolved in the store)."""
        schema = {"$ref": uri_with_fragment}
        if HAVE_REFERENCING:
            return StrictValidator(schema, registry=self.registry(),
                                   format_checker=FORMAT_CHECKER)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            resolver = jsonschema.RefResolver("", schema, store=dict(self.docs))
        return StrictValidator(schema, resolver=resolver, format_checker=FORMAT_CHECKER)

    def resolve(self, base_uri, ref):
        """The (uri, target) a $ref names, or raises LookupError."""
        absolute = urllib.parse.urljoin(base_uri, ref) if not ref.startswith("#") else \
            base_uri + ref
        if ref.startswith("urn:"):
            absolute = ref
        uri, _, fragment = absolute.partition("#")
        if uri not in self.docs:
            raise LookupError("no document %s" % uri)
        return uri, resolve_pointer(self.docs[uri], urllib.parse.unquote(fragment))


def resolve_pointer(doc, pointer):
    if pointer == "":
        return doc
    if not pointer.startswith("/"):
        raise LookupError("not a JSON pointer: %r" % pointer)
    node = doc
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise LookupError("pointer %s: no %r" % (pointer, token))
    return node


def pointer_escape(token):
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer_of(parts):
    return "".join("/" + pointer_escape(p) for p in parts)


def schema_errors(validator, instance, prefix="", limit=8):
    """The validation errors as strings 'prefix/path: message'."""
    out = []
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path)))
    for err in errors[:limit]:
        where = prefix + pointer_of(err.absolute_path)
        msg = err.message
        if err.validator in ("not", "oneOf", "anyOf", "allOf"):
            # jsonschema's message repeats the whole instance: say what it must be.
            msg = "must %sbe valid under %s %s" % (
                "not " if err.validator == "not" else "", err.validator if
                err.validator != "not" else "", json.dumps(err.validator_value))
            msg = msg.replace("under  ", "under ")
        else:
            # Nor repeat a large instance ("[{...}, ...] is not of type 'object'").
            text = repr(err.instance)
            if len(text) > 60 and text in msg:
                kind = type(err.instance).__name__
                msg = msg.replace(text, {"dict": "an object", "list": "an array"}.get(
                    kind, "the value"))
        if len(msg) > 300:
            msg = msg[:300] + "..."
        out.append("%s: %s" % (where or "/", msg))
    if len(errors) > limit:
        out.append("... and %d more" % (len(errors) - limit))
    return out


# ---------------------------------------------------------------------------
# (a) the schema files
# ---------------------------------------------------------------------------
def walk_schema(schema, visit, path="#"):
    """Calls visit(subschema, path) on schema and every subschema in it."""
    if not isinstance(schema, dict):
        return
    visit(schema, path)
    for key, value in schema.items():
        if key in SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
            for name, sub in value.items():
                walk_schema(sub, visit, "%s/%s/%s" % (path, key, pointer_escape(name)))
        elif key in SCHEMA_KEYWORDS and isinstance(value, dict):
            walk_schema(value, visit, "%s/%s" % (path, key))
        elif key in SCHEMA_LIST_KEYWORDS and isinstance(value, list):
            for i, sub in enumerate(value):
                walk_schema(sub, visit, "%s/%s/%d" % (path, key, i))


def collect_refs(node, path=""):
    """Every $ref string in node (any depth) with its JSON pointer."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield path, value
            else:
                yield from collect_refs(value, path + "/" + pointer_escape(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from collect_refs(value, "%s/%d" % (path, i))


def check_refs(store, uri, doc):
    problems = []
    for where, ref in collect_refs(doc):
        try:
            store.resolve(uri, ref)
        except (LookupError, KeyError) as exc:
            problems.append("%s: $ref %r does not resolve (%s)" % (where or "/", ref, exc))
    return problems


def check_meta(schema, where, draft7_too=False):
    problems = []
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        problems.append("%s: not a valid JSON Schema 2020-12: %s at %s" % (
            where, exc.message, pointer_of(exc.absolute_path) or "/"))
    if draft7_too:
        try:
            Draft7Validator.check_schema(schema)
        except SchemaError as exc:
            problems.append("%s: not a valid JSON Schema draft-07: %s at %s" % (
                where, exc.message, pointer_of(exc.absolute_path) or "/"))
    return problems


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


# -- OpenAPI 3.1 ------------------------------------------------------------
OPENAPI_TOP = {"openapi", "info", "jsonSchemaDialect", "servers", "paths", "webhooks",
               "components", "security", "tags", "externalDocs"}
PATH_ITEM_KEYS = {"$ref", "summary", "description", "servers", "parameters"} | set(HTTP_METHODS)
OPERATION_KEYS = {"tags", "summary", "description", "externalDocs", "operationId",
                  "parameters", "requestBody", "responses", "callbacks", "deprecated",
                  "security", "servers"}
RESPONSE_CODE_RE = re.compile(r"^(default|[1-5]XX|[1-5][0-9][0-9])$")
MEDIA_TYPE_RE = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+*-]+$")


def unknown_keys(obj, allowed, where):
    return ["%s: unknown field %r" % (where, k) for k in obj
            if k not in allowed and not str(k).startswith("x-")]


def deref(store, uri, obj):
    """Follows a Reference Object; returns (uri, object)."""
    seen = 0
    while isinstance(obj, dict) and "$ref" in obj and seen < 16:
        uri, obj = store.resolve(uri, obj["$ref"])
        seen += 1
    return uri, obj


def check_openapi(store, path, doc):
    uri = file_uri(path)
    problems = []
    if not isinstance(doc, dict):
        return ["not a mapping"]
    problems += unknown_keys(doc, OPENAPI_TOP, "/")
    if not re.fullmatch(r"3\.1\.[0-9]+", str(doc.get("openapi", ""))):
        problems.append("/openapi: %r is not 3.1.x" % doc.get("openapi"))
    info = doc.get("info")
    if not isinstance(info, dict) or not isinstance(info.get("title"), str) or \
            not isinstance(info.get("version"), str):
        problems.append("/info: needs string title and version")
    if doc.get("jsonSchemaDialect") != DRAFT_2020_12:
        problems.append("/jsonSchemaDialect: must be %s (the schemas are validated as "
                        "plain 2020-12)" % DRAFT_2020_12)
    for i, server in enumerate(doc.get("servers", [])):
        if not isinstance(server, dict) or not isinstance(server.get("url"), str):
            problems.append("/servers/%d: needs a url" % i)
    tag_names = {t.get("name") for t in doc.get("tags", []) if isinstance(t, dict)}
    problems += check_refs(store, uri, doc)
    if problems:
        return problems  # the rest assumes every $ref resolves

    schemas_seen = []

    def schema_at(where, schema):
        schemas_seen.append((where, schema))

    def check_parameters(params, where):
        out = []
        seen = set()
        resolved = []
        for i, p in enumerate(params or []):
            _, p = deref(store, uri, p)
            w = "%s/parameters/%d" % (where, i)
            if not isinstance(p, dict) or not isinstance(p.get("name"), str):
                out.append("%s: needs a name" % w)
                continue
            if p.get("in") not in ("query", "header", "path", "cookie"):
                out.append("%s: 'in' must be query, header, path or cookie" % w)
            if p.get("in") == "path" and p.get("required") is not True:
                out.append("%s: a path parameter must have required: true" % w)
            key = (p.get("name").lower() if p.get("in") == "header" else p.get("name"),
                   p.get("in"))
            if key in seen:
                out.append("%s: parameter %s in %s declared twice" % (w, key[0], key[1]))
            seen.add(key)
            if ("schema" in p) == ("content" in p):
                out.append("%s: needs exactly one of schema and content" % w)
            if "schema" in p:
                schema_at(w + "/schema", p["schema"])
            resolved.append(p)
        return out, resolved

    def check_content(content, where):
        out = []
        if not isinstance(content, dict) or not content:
            return ["%s: content must be a non-empty map" % where]
        for media, mt in content.items():
            if not MEDIA_TYPE_RE.match(media.split(";")[0].strip().lower()):
                out.append("%s: %r is not a media type" % (where, media))
            if isinstance(mt, dict) and "schema" in mt:
                schema_at("%s/%s/schema" % (where, pointer_escape(media)), mt["schema"])
        return out

    paths = doc.get("paths")
    if not isinstance(paths, dict):
        return problems + ["/paths: missing"]
    operation_ids = {}
    for pth, item in paths.items():
        w = "/paths/" + pointer_escape(pth)
        if not str(pth).startswith("/"):
            problems.append("%s: a path must start with /" % w)
        if not isinstance(item, dict):
            problems.append("%s: not a mapping" % w)
            continue
        problems += unknown_keys(item, PATH_ITEM_KEYS, w)
        templ = re.findall(r"\{([^}/]+)\}", pth)
        p_out, item_params = check_parameters(item.get("parameters"), w)
        problems += p_out
        for method in HTTP_METHODS:
            if method not in item:
                continue
            op = item[method]
            ow = "%s/%s" % (w, method)
            if not isinstance(op, dict):
                problems.append("%s: not a mapping" % ow)
                continue
            problems += unknown_keys(op, OPERATION_KEYS, ow)
            op_id = op.get("operationId")
            if op_id is not None:
                if op_id in operation_ids:
                    problems.append("%s: operationId %r also used at %s" % (
                        ow, op_id, operation_ids[op_id]))
                operation_ids[op_id] = ow
            for t in op.get("tags", []):
                if t not in tag_names:
                    problems.append("%s: tag %r is not declared in /tags" % (ow, t))
            p_out, op_params = check_parameters(op.get("parameters"), ow)
            problems += p_out
            declared = {p["name"] for p in item_params + op_params if p.get("in") == "path"}
            if set(templ) != declared:
                problems.append("%s: path template parameters %s but path parameters "
                                "declared %s" % (ow, sorted(templ), sorted(declared)))
            if "requestBody" in op:
                _, body = deref(store, uri, op["requestBody"])
                problems += check_content(body.get("content"), ow + "/requestBody/content")
            responses = op.get("responses")
            if not isinstance(responses, dict) or not responses:
                problems.append("%s: needs responses" % ow)
                continue
            for code, resp in responses.items():
                rw = "%s/responses/%s" % (ow, code)
                if not RESPONSE_CODE_RE.match(str(code)):
                    problems.append("%s: %r is not a response code" % (rw, code))
                if not isinstance(code, str):
                    problems.append("%s: write the code as a string ('%s')" % (rw, code))
                _, resp = deref(store, uri, resp)
                if not isinstance(resp, dict) or not isinstance(resp.get("description"), str):
                    problems.append("%s: a response needs a description" % rw)
                    continue
                if "content" in resp:
                    problems += check_content(resp["content"], rw + "/content")
                for hname, header in resp.get("headers", {}).items():
                    if hname.lower() == "content-type":
                        problems.append("%s/headers: Content-Type is not described as a "
                                        "header (it is ignored there)" % rw)
                    _, header = deref(store, uri, header)
                    if isinstance(header, dict) and "schema" in header:
                        schema_at("%s/headers/%s/schema" % (rw, hname), header["schema"])
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        schema_at("/components/schemas/" + pointer_escape(name), schema)
    for where, schema in schemas_seen:
        problems += check_meta(schema, where)
    if not problems:  # examples in component schemas validate
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            if isinstance(schema, dict) and schema.get("examples"):
                v = store.validator("%s#/components/schemas/%s" % (uri, pointer_escape(name)))
                for i, ex in enumerate(schema["examples"]):
                    problems += ["/components/schemas/%s/examples/%d%s" % (name, i, p)
                                 for p in schema_errors(v, ex)]
    return problems


# -- AsyncAPI 3.0 -----------------------------------------------------------
ASYNCAPI_TOP = {"asyncapi", "id", "info", "servers", "defaultContentType", "channels",
                "operations", "components"}
SCHEMA_FORMATS_JSON = {
    "application/schema+json;version=draft-07",
    "application/schema+yaml;version=draft-07",
    "application/vnd.aai.asyncapi+json;version=3.0.0",
    "application/vnd.aai.asyncapi+yaml;version=3.0.0",
    "application/vnd.aai.asyncapi;version=3.0.0",
}


def check_asyncapi(store, path, doc, topics_file):
    uri = file_uri(path)
    problems = []
    if not isinstance(doc, dict):
        return ["not a mapping"]
    problems += unknown_keys(doc, ASYNCAPI_TOP, "/")
    if doc.get("asyncapi") != "3.0.0":
        problems.append("/asyncapi: %r is not 3.0.0" % doc.get("asyncapi"))
    info = doc.get("info")
    if not isinstance(info, dict) or not isinstance(info.get("title"), str) or \
            not isinstance(info.get("version"), str):
        problems.append("/info: needs string title and version")
    for name, server in doc.get("servers", {}).items():
        if not isinstance(server, dict) or not all(
                isinstance(server.get(k), str) for k in ("host", "protocol")):
            problems.append("/servers/%s: needs host and protocol" % name)
    problems += check_refs(store, uri, doc)
    if problems:
        return problems

    channels = doc.get("channels", {})
    channel_messages = {}  # channel -> {name: resolved message}
    for cname, channel in channels.items():
        cw = "/channels/" + pointer_escape(cname)
        _, channel = deref(store, uri, channel)
        address = channel.get("address")
        if address is not None and not isinstance(address, str):
            problems.append("%s/address: must be a string or null" % cw)
        params = set(re.findall(r"\{([^}]+)\}", address or ""))
        if params != set(channel.get("parameters", {})):
            problems.append("%s: address parameters %s, declared %s" % (
                cw, sorted(params), sorted(channel.get("parameters", {}))))
        msgs = {}
        for mname, msg in channel.get("messages", {}).items():
            _, msg = deref(store, uri, msg)
            msgs[mname] = msg
        channel_messages[cname] = msgs
        for bname, binding in channel.get("bindings", {}).items():
            if not isinstance(binding, dict) or "bindingVersion" not in binding:
                problems.append("%s/bindings/%s: needs bindingVersion" % (cw, bname))

    for oname, op in doc.get("operations", {}).items():
        ow = "/operations/" + pointer_escape(oname)
        if op.get("action") not in ("send", "receive"):
            problems.append("%s/action: must be send or receive" % ow)
        ref = op.get("channel", {}).get("$ref", "")
        m = re.fullmatch(r"#/channels/([^/]+)", ref)
        if not m:
            problems.append("%s/channel: must be a $ref to #/channels/<name>" % ow)
            continue
        cname = m.group(1).replace("~1", "/").replace("~0", "~")
        for i, mref in enumerate(op.get("messages", [])):
            r = mref.get("$ref", "") if isinstance(mref, dict) else ""
            if not r.startswith("#/channels/%s/messages/" % m.group(1)):
                problems.append("%s/messages/%d: must refer to a message of channel %s "
                                "(#/channels/%s/messages/...)" % (ow, i, cname, m.group(1)))

    messages = doc.get("components", {}).get("messages", {})
    for mname, msg in messages.items():
        mw = "/components/messages/" + pointer_escape(mname)
        _, msg = deref(store, uri, msg)
        payload = msg.get("payload")
        if payload is None:
            problems.append("%s: needs a payload" % mw)
        elif isinstance(payload, dict) and "schemaFormat" in payload:
            if payload["schemaFormat"] not in SCHEMA_FORMATS_JSON:
                problems.append("%s/payload/schemaFormat: %r is not a JSON Schema format "
                                "this check knows" % (mw, payload["schemaFormat"]))
            problems += check_meta(payload.get("schema", {}), mw + "/payload/schema", True)
        else:
            problems += check_meta(payload, mw + "/payload", True)
        headers = msg.get("headers")
        if headers is not None:
            problems += check_meta(headers, mw + "/headers", True)
        for bname, binding in msg.get("bindings", {}).items() if "$ref" not in msg.get(
                "bindings", {}) else deref(store, uri, msg["bindings"])[1].items():
            if not isinstance(binding, dict) or "bindingVersion" not in binding:
                problems.append("%s/bindings/%s: needs bindingVersion" % (mw, bname))
    for sname, schema in doc.get("components", {}).get("schemas", {}).items():
        problems += check_meta(schema, "/components/schemas/" + sname, True)
    if problems:
        return problems
    return check_asyncapi_contract(store, uri, doc, channel_messages, topics_file)


def check_asyncapi_contract(store, uri, doc, channel_messages, topics_file):
    """The AsyncAPI document says what the contract says."""
    problems = []
    channels = doc["channels"]
    by_address = {c.get("address"): name for name, c in channels.items()}
    missing = [t for t in EVENT_TYPES if "urn:eventshop:schema:%s:1" % t not in store.docs]
    if "urn:eventshop:schema:envelope:1" not in store.docs or missing:
        return ["cannot check the messages against the contract: no schema %s" % (
            missing or "envelope")]
    for etype, (producer, topic) in EVENT_TYPES.items():
        cname = by_address.get(topic)
        if cname is None:
            problems.append("no channel with address %r (for %s)" % (topic, etype))
            continue
        msg = channel_messages[cname].get(etype)
        if msg is None:
            problems.append("channel %s has no message %s" % (cname, etype))
            continue
        _, binding = deref(store, uri, msg.get("bindings", {}))
        if "key" not in binding.get("kafka", {}):
            problems.append("message %s: no Kafka key in its bindings" % etype)
        # A message built from the schemas' own examples must validate
        # against the message's payload and headers schemas.
        event, headers = example_event(store, etype)
        msg_ptr = "%s#/components/messages/%s" % (uri, etype)
        problems += ["message %s payload (example) %s" % (etype, p) for p in schema_errors(
            store.validator(msg_ptr + "/payload/schema"), event)]
        problems += ["message %s headers (example) %s" % (etype, p) for p in schema_errors(
            store.validator(msg_ptr + "/headers"), headers)]
        wrong = copy.deepcopy(event)
        wrong["data"] = {"orderId": event["subject"]}
        if not list(store.validator(msg_ptr + "/payload/schema").iter_errors(wrong)):
            problems.append("message %s payload accepts an event whose data lacks the "
                            "required fields: is data referenced?" % etype)
        hv = store.validator(msg_ptr + "/headers")
        for h in CE_HEADERS:
            if not list(hv.iter_errors({k: v for k, v in headers.items() if k != h})):
                problems.append("message %s: headers without %s pass: it must be "
                                "required" % (etype, h))
        sends = [o for o in doc.get("operations", {}).values()
                 if o.get("action") == "send" and o["channel"]["$ref"] == "#/channels/" + cname
                 and any(m["$ref"].endswith("/" + etype) for m in o.get("messages", []))]
        if len(sends) != 1 or producer not in [t.get("name") for t in sends[0].get("tags", [])]:
            problems.append("%s must be sent by exactly one operation, tagged %s" % (
                etype, producer))
    dlq = [n for n, c in channels.items() if str(c.get("address", "")).startswith("dlq.")]
    if len(dlq) != 1:
        problems.append("expected one dead-letter channel dlq.{service}")
    else:
        sample = {"dlq.error": "invalid CloudEvent: attribute 'id' is missing",
                  "dlq.original.topic": "orders", "dlq.original.partition": "3",
                  "dlq.original.offset": "42", "dlq.attempts": "1",
                  "dlq.service": "payment-service", "dlq.time": "2026-11-22T04:15:10.123Z"}
        for mname, raw in channels[dlq[0]].get("messages", {}).items():
            ref = raw.get("$ref") if isinstance(raw, dict) else None
            if ref:
                base = uri + ref if ref.startswith("#") else urllib.parse.urljoin(uri, ref)
            else:
                base = "%s#/channels/%s/messages/%s" % (uri, pointer_escape(dlq[0]),
                                                        pointer_escape(mname))
            ptr = base + "/headers"
            hv = store.validator(ptr)
            problems += ["dead-letter message %s headers (sample) %s" % (mname, p)
                         for p in schema_errors(hv, sample)]
            for h in DLQ_HEADERS:
                if not list(hv.iter_errors({k: v for k, v in sample.items() if k != h})):
                    problems.append("dead-letter message %s: headers without %s pass: it "
                                    "must be required" % (mname, h))
    if topics_file and topics_file.exists():
        for line in topics_file.read_text().splitlines():
            fields = line.split("#")[0].split()
            if len(fields) != 2:
                continue
            topic, parts = fields[0], int(fields[1])
            if topic.startswith("dlq."):
                cname = dlq[0] if dlq else None
            else:
                cname = by_address.get(topic)
            if cname is None:
                problems.append("deploy/topics.txt: topic %s has no channel" % topic)
                continue
            got = channels[cname].get("bindings", {}).get("kafka", {}).get("partitions")
            if got != parts:
                problems.append("channel %s: Kafka partitions %s, deploy/topics.txt says %d "
                                "for %s" % (cname, got, parts, topic))
    return problems


def example_event(store, etype):
    """An event of etype made of the envelope's and the data schema's examples."""
    envelope = copy.deepcopy(store.docs["urn:eventshop:schema:envelope:1"]["examples"][0])
    data = copy.deepcopy(store.docs["urn:eventshop:schema:%s:1" % etype]["examples"][0])
    producer, _ = EVENT_TYPES[etype]
    envelope.update(type=etype, source="/eventshop/" + producer,
                    dataschema="urn:eventshop:schema:%s:1" % etype, data=data,
                    subject=data["orderId"], partitionkey=data["orderId"],
                    correlationid=data["orderId"])
    if etype == "OrderPlaced":
        envelope.pop("causationid", None)
    headers = {"content-type": "application/cloudevents+json; charset=UTF-8",
               "ce_specversion": "1.0", "ce_id": envelope["id"], "ce_type": etype,
               "ce_source": envelope["source"]}
    return envelope, headers


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
        problems.append("envelope type enum %s differs from the contract's ten types" % (
            sorted(envelope_types or [])))
    if event_files != contract:
        problems.append("schemas/events/ has %s, the contract's types are %s" % (
            sorted(event_files), sorted(contract)))
    report.item("schemas", "schemas/ (every contract event type has a schema)", problems)


def rel(p):
    if str(p) == "-":
        return "<stdin>"
    try:
        return str(Path(p).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)


# ---------------------------------------------------------------------------
# (b) events
# ---------------------------------------------------------------------------
def event_inputs(paths):
    files = []
    for p in map(Path, paths):
        if str(p) == "-":
            files.append(p)
        elif p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file()
                            and f.suffix in (".json", ".jsonl", ".ndjson"))
        elif p.is_file():
            files.append(p)
        else:
            die("no such file or directory: %s" % p)
    return files


def records_of(path):
    """Yields (where, raw_text, value or exception) for each JSON value in path."""
    raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield rel(path), "", ValueError("not UTF-8: %s" % exc)
        return
    if not text.strip():
        yield rel(path), text, ValueError("empty file")
        return
    try:
        whole = json_loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, list):
        for i, v in enumerate(whole):
            yield "%s[%d]" % (rel(path), i), json.dumps(v), v
        return
    if isinstance(whole, dict) and "\n" in text.strip():  # one pretty-printed event
        yield rel(path), text, whole
        return
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield "%s:%d" % (rel(path), no), line, json_loads(line)
        except ValueError as exc:
            yield "%s:%d" % (rel(path), no), line, exc


class Saga:
    """What the events seen so far say about each order, for cross-event rules."""

    def __init__(self):
        self.by_id = {}  # id -> (where, canonical json, event)
        self.traceparent = {}  # subject -> (traceparent, where)
        self.terminal = {}  # subject -> (type, id, where)
        self.emails = {}  # (subject, template) -> (id, where)
        self.pending_causes = []  # (where, event) whose cause was not seen yet


def check_event(store, saga, where, raw, ev):
    """Problems of one CloudEvent."""
    problems = []
    if len(raw.encode("utf-8")) > EVENT_MAX_BYTES:
        problems.append("message of %d bytes exceeds the %d byte limit" % (
            len(raw.encode("utf-8")), EVENT_MAX_BYTES))
    if not isinstance(ev, dict):
        return problems + ["not a JSON object"]
    problems += ["envelope %s" % p for p in schema_errors(
        store.validator("urn:eventshop:schema:envelope:1"), ev)]
    data = ev.get("data")
    schema_id = ev.get("dataschema")
    if isinstance(data, dict) and isinstance(schema_id, str):
        if schema_id in store.docs and schema_id.startswith("urn:eventshop:schema:") and \
                not schema_id.startswith("urn:eventshop:schema:envelope:"):
            problems += ["data%s" % p if p.startswith("/") else "data %s" % p
                         for p in schema_errors(store.validator(schema_id), data)]
        else:
            problems.append("dataschema %r names no schema in schemas/events/" % schema_id)
    subject = ev.get("subject")
    for attr in ("partitionkey", "correlationid"):
        if attr in ev and ev[attr] != subject:
            problems.append("%s %r differs from subject %r (both are the orderId)" % (
                attr, ev[attr], subject))
    if isinstance(data, dict) and "orderId" in data and data["orderId"] != subject:
        problems.append("data/orderId %r differs from subject %r" % (data["orderId"], subject))
    etype = ev.get("type")
    if isinstance(data, dict) and etype == "OrderPlaced":
        items = data.get("items")
        if isinstance(items, list) and all(isinstance(i, dict) for i in items):
            skus = [i.get("sku") for i in items]
            dups = sorted({s for s in skus if skus.count(s) > 1}, key=str)
            if dups:
                problems.append("data/items: sku %s on more than one line" % dups)
            try:
                total = sum(i["quantity"] * i["unitPriceCents"] for i in items)
                if total != data.get("totalCents"):
                    problems.append("data/totalCents %r is not the sum of quantity * "
                                    "unitPriceCents (%d)" % (data.get("totalCents"), total))
            except (KeyError, TypeError):
                pass
    if isinstance(data, dict) and etype == "InventoryRejected":
        for i, item in enumerate(data.get("items") or []):
            if isinstance(item, dict) and isinstance(item.get("requested"), int) and \
                    isinstance(item.get("available"), int) and \
                    item["available"] >= item["requested"]:
                problems.append("data/items/%d: available %d >= requested %d is not out of "
                                "stock" % (i, item["available"], item["requested"]))
    if problems:
        return problems
    problems += check_saga(saga, where, ev)
    return problems


def check_saga(saga, where, ev):
    """Rules across the events of one order (only for events valid on their own)."""
    problems = []
    canonical = json.dumps(ev, sort_keys=True)
    eid = ev["id"]
    if eid in saga.by_id:
        first_where, first_canon, _ = saga.by_id[eid]
        if first_canon != canonical:
            problems.append("id %s was already used by a different event at %s (a "
                            "redelivery must be identical)" % (eid, first_where))
        return problems  # a redelivery: already checked
    saga.by_id[eid] = (where, canonical, ev)
    subject = ev["subject"]
    tp = saga.traceparent.setdefault(subject, (ev["traceparent"], where))
    if tp[0] != ev["traceparent"]:
        problems.append("traceparent %s differs from %s of the same order at %s (it is "
                        "carried unchanged through the saga)" % (ev["traceparent"], tp[0], tp[1]))
    if ev["type"] in ("OrderConfirmed", "OrderCancelled"):
        t = saga.terminal.setdefault(subject, (ev["type"], eid, where))
        if t[1] != eid:
            problems.append("order %s already ended with %s at %s (a terminal order never "
                            "changes again)" % (subject, t[0], t[2]))
    if ev["type"] == "EmailSent":
        key = (subject, ev["data"]["template"])
        e = saga.emails.setdefault(key, (eid, where))
        if e[0] != eid:
            problems.append("email %s for order %s already sent at %s (each once)" % (
                key[1], subject, e[1]))
    if "causationid" in ev:
        if ev["causationid"] == eid:
            problems.append("causationid is the event's own id")
        else:
            saga.pending_causes.append((where, ev))
    return problems


def check_causes(saga):
    """causationid names an event of the same order, when that event was given."""
    out = []
    for where, ev in saga.pending_causes:
        cause = saga.by_id.get(ev["causationid"])
        if cause and cause[2]["subject"] != ev["subject"]:
            out.append((where, ev, "causationid %s is an event of another order (%s)" % (
                ev["causationid"], cause[2]["subject"])))
    return out


def kcat_headers(h):
    if isinstance(h, dict):
        return h, []
    if isinstance(h, list) and len(h) % 2 == 0:
        out = {}
        for k, v in zip(h[0::2], h[1::2]):
            out.setdefault(k, v)
        return out, []
    if h is None:
        return {}, []
    return {}, ["headers: neither a list of name, value pairs nor an object"]


def check_kafka_record(store, saga, where, rec):
    """A `kcat -J` record: key, headers, then the value as a CloudEvent."""
    asyncapi = store.asyncapi_uri
    topic = rec.get("topic")
    headers, problems = kcat_headers(rec.get("headers"))
    payload = rec.get("payload")
    if re.search(r"(^|\.)dlq\.", str(topic)) or any(str(h).startswith("dlq.") for h in headers):
        if asyncapi:
            problems += ["headers%s" % p if p.startswith("/") else "headers " + p
                         for p in schema_errors(store.validator(
                             asyncapi + "#/components/schemas/DeadLetterHeaders"), headers)]
        svc = topic[4:]
        if svc in SERVICES and headers.get("dlq.service") not in (None, svc):
            problems.append("dlq.service %r on topic %s" % (headers.get("dlq.service"), topic))
        return None, problems
    if not isinstance(payload, str):
        return None, problems + ["payload is not a string (kcat -J prints the value as one)"]
    try:
        ev = json_loads(payload)
    except ValueError as exc:
        return None, problems + ["payload is not JSON: %s" % exc]
    if not isinstance(ev, dict):
        return None, problems + ["payload is not a JSON object"]
    etype = ev.get("type")
    if etype in EVENT_TYPES:
        if asyncapi:
            problems += ["headers%s" % p if p.startswith("/") else "headers " + p
                         for p in schema_errors(store.validator(
                             "%s#/components/messages/%s/headers" % (asyncapi, etype)), headers)]
        want_topic = EVENT_TYPES[etype][1]
        if topic in DEFAULT_TOPICS and topic != want_topic:
            problems.append("%s on topic %s, the contract's topic is %s" % (
                etype, topic, want_topic))
    for h, attr in (("ce_id", "id"), ("ce_type", "type"), ("ce_source", "source"),
                    ("ce_specversion", "specversion")):
        if h in headers and headers[h] != ev.get(attr):
            problems.append("header %s %r differs from attribute %s %r" % (
                h, headers[h], attr, ev.get(attr)))
    if rec.get("key") != ev.get("partitionkey"):
        problems.append("Kafka key %r differs from partitionkey %r" % (
            rec.get("key"), ev.get("partitionkey")))
    return (payload, ev), problems


def run_events(store, paths, report):
    saga = Saga()
    for path in event_inputs(paths):
        for where, raw, value in records_of(path):
            if isinstance(value, Exception):
                report.item("events", where, ["not JSON: %s" % value])
                continue
            if isinstance(value, dict) and "payload" in value and "topic" in value \
                    and "specversion" not in value:
                got, problems = check_kafka_record(store, saga, where, value)
                if got is None:
                    report.item("events", "%s (record of %s)" % (where, value.get("topic")),
                                problems)
                    continue
                raw, ev = got
            else:
                ev, problems = value, []
            ev_id = ev.get("id") if isinstance(ev, dict) else None
            ev_type = ev.get("type") if isinstance(ev, dict) else None
            label = "%s event %s (%s)" % (where, ev_id, ev_type)
            problems = problems + check_event(store, saga, where, raw, ev)
            report.item("events", label, problems)
    for where, ev, problem in check_causes(saga):
        report.item("events", "%s event %s (%s) causation" % (where, ev["id"], ev["type"]),
                    [problem])


# ---------------------------------------------------------------------------
# (c) HTTP exchanges
# ---------------------------------------------------------------------------
class Api:
    def __init__(self, store, uri):
        self.store = store
        self.uri = uri
        self.doc = store.docs[uri]
        self.service = self.doc.get("x-eventshop-service")
        self.routes = []  # (segments, template)
        for template in self.doc.get("paths", {}):
            self.routes.append((template.strip("/").split("/") if template != "/" else [],
                                template))

    def match(self, path):
        """(template, params) of the best route for path, or None."""
        segs = path.strip("/").split("/") if path.strip("/") else []
        best = None
        for tsegs, template in self.routes:
            if len(tsegs) != len(segs):
                continue
            params, rank = {}, []
            for t, s in zip(tsegs, segs):
                if t.startswith("{") and t.endswith("}"):
                    if not s:
                        break
                    params[t[1:-1]] = urllib.parse.unquote(s)
                    rank.append(1)
                elif t == s:
                    rank.append(0)
                else:
                    break
            else:
                if best is None or rank < best[2]:
                    best = (template, params, rank)
        return best[:2] if best else None


def media_base(ct):
    return (ct or "").split(";")[0].strip().lower()


def is_json_media(media):
    return media == "application/json" or media.endswith("+json")


def check_exchange(store, apis, ex):
    problems = []
    for field in ("method", "path", "status"):
        if field not in ex:
            return None, ["missing %r" % field]
    method = str(ex["method"]).lower()
    head = method == "head"  # served by the GET handler, without a body
    if head:
        method = "get"
    url = urllib.parse.urlsplit(ex["path"])
    path, query = url.path, urllib.parse.parse_qs(url.query)
    status = ex["status"]
    if not isinstance(status, int):
        return None, ["status %r is not an integer" % status]
    candidates = [a for a in apis if ex.get("service") in (None, a.service)]
    if not candidates and path in COMMON_PATHS:
        candidates = apis[:1]
    if not candidates:
        return None, ["no OpenAPI document for service %r (only %s are in the contract for "
                      "every daemon)" % (ex.get("service"), ", ".join(sorted(COMMON_PATHS)))]
    api = match = None
    for a in candidates:
        m = a.match(path)
        if m and method in a.doc["paths"][m[0]]:
            api, match = a, m
            break
    if api is None:
        # Outside the documented API the HTTP layer (es/http.h) answers 404
        # for an unknown path and 405 for a known path with another method,
        # both as problems; HEAD is served by GET and has no body.
        known = [a for a in candidates if a.match(path)]
        want = 405 if known else 404
        label = "%s %s -> %s" % (method.upper(), ex["path"], status)
        if status != want:
            return label, ["%s %s is in no OpenAPI document (%s): expected a %d problem, "
                           "got %d" % (method.upper(), path, ", ".join(
                               Path(a.store.paths[a.uri]).name for a in candidates),
                               want, status)]
        problems = []
        if want == 405 and "headers" in ex and not any(
                k.lower() == "allow" for k in ex["headers"] or {}):
            problems.append("a 405 needs an Allow header")
        if media_base(ex.get("contentType")) != "application/problem+json":
            problems.append("a %d must be application/problem+json" % want)
        else:
            problems += ["body%s" % p if p.startswith("/") else "body " + p
                         for p in schema_errors(store.validator(
                             store.openapi_problem_uri), ex.get("body"))]
        return label, problems + semantic_checks(method, None, {}, {}, status,
                                                 "application/problem+json", ex.get("body"), {})
    template, params = match
    tptr = "/paths/" + pointer_escape(template)
    op = api.doc["paths"][template][method]
    responses = op.get("responses", {})
    code = str(status)
    # "default" stands for the errors not listed (the documents say so): a
    # success code must be documented by itself.
    for key in (code, code[0] + "XX", "default" if status >= 400 else None):
        if key in responses:
            break
    else:
        return None, ["status %d is not documented for %s %s (documented: %s)" % (
            status, method.upper(), template, ", ".join(map(str, responses)))]
    resp_uri, resp = deref(store, api.uri, responses[key])
    resp_ptr = "%s#%s/%s/responses/%s" % (api.uri, tptr, method, pointer_escape(key))
    if "$ref" in responses[key]:
        resp_ptr = urllib.parse.urljoin(api.uri, responses[key]["$ref"]) \
            if not responses[key]["$ref"].startswith("#") else api.uri + responses[key]["$ref"]
    content = resp.get("content", {})
    body = ex.get("body")
    media = media_base(ex.get("contentType"))
    if head:
        if body not in (None, ""):
            problems.append("a body in the answer to HEAD")
        return "HEAD %s -> %d" % (ex["path"], status), problems
    if content:
        if media not in {media_base(k) for k in content}:
            problems.append("content type %r not documented for %s %s %s (documented: %s)" % (
                ex.get("contentType"), method.upper(), template, key, ", ".join(content)))
        else:
            mkey = next(k for k in content if media_base(k) == media)
            if is_json_media(media) and isinstance(body, str):
                try:
                    body = json_loads(body)
                except ValueError as exc:
                    problems.append("body is not JSON: %s" % exc)
                    body = None
            if "schema" in content[mkey] and not problems:
                ptr = "%s/content/%s/schema" % (resp_ptr, pointer_escape(mkey))
                problems += ["body%s" % p if p.startswith("/") else "body " + p
                             for p in schema_errors(store.validator(ptr), body)]
    elif body not in (None, "", {}):
        problems.append("a body where %s %s %s documents none" % (
            method.upper(), template, key))
    headers = {k.lower(): v for k, v in (ex.get("headers") or {}).items()}
    if "headers" in ex:
        for hname, header in resp.get("headers", {}).items():
            huri, header = deref(store, resp_uri, header)
            value = headers.get(hname.lower())
            if value is None:
                if header.get("required"):
                    problems.append("header %s missing" % hname)
                continue
            if "schema" in header:
                hptr = "%s/headers/%s/schema" % (resp_ptr, pointer_escape(hname))
                problems += ["header %s %s" % (hname, p)
                             for p in schema_errors(store.validator(hptr), value)]
    if not problems:
        problems += semantic_checks(method, template, params, query, status, media, body,
                                    headers)
    return "%s %s -> %d" % (method.upper(), ex["path"], status), problems


def semantic_checks(method, template, params, query, status, media, body, headers):
    """What the OpenAPI documents say in words."""
    out = []
    if media == "application/problem+json" and isinstance(body, dict):
        if body.get("status") != status:
            out.append("problem status %r differs from the HTTP status %d" % (
                body.get("status"), status))
    if not isinstance(body, (dict, list)):
        return out
    if method == "post" and template == "/orders" and status == 202:
        loc = headers.get("location")
        if loc is not None and loc != "/orders/" + body["orderId"]:
            out.append("Location %r is not /orders/%s" % (loc, body["orderId"]))
    if template in ("/orders/{orderId}", "/orders/{orderId}/cancel") and status in (200, 202):
        if body.get("orderId") != params.get("orderId"):
            out.append("orderId %r differs from the path's %r" % (
                body.get("orderId"), params.get("orderId")))
    if method == "get" and template == "/orders/{orderId}" and status == 200:
        out += order_rules(body, "body")
        ids = [e.get("id") for e in body.get("timeline", [])]
        if len(ids) != len(set(ids)):
            out.append("body/timeline: an event id appears twice")
        if body["timeline"] and body["timeline"][0].get("type") != "OrderPlaced":
            out.append("body/timeline/0: the oldest event of an order is its OrderPlaced, "
                       "not %s" % body["timeline"][0].get("type"))
        times = [e["time"] for e in body["timeline"]]
        if times != sorted(times):
            out.append("body/timeline: not oldest first (time)")
    if method == "get" and template == "/orders" and status == 200:
        orders = body["orders"]
        created = [o["createdAt"] for o in orders]
        if created != sorted(created, reverse=True):
            out.append("body/orders: not newest first (createdAt)")
        limit = query.get("limit", [str(ORDERS_DEFAULT_LIMIT)])[0]
        if limit.isdigit() and len(orders) > int(limit):
            out.append("body/orders: %d orders, more than limit %s" % (len(orders), limit))
        for i, o in enumerate(orders):
            for q in ("customerId", "status"):
                if q in query and o.get(q) != query[q][0]:
                    out.append("body/orders/%d: %s %r does not match the filter %r" % (
                        i, q, o.get(q), query[q][0]))
            out += order_rules(o, "body/orders/%d" % i)
    if method == "get" and template == "/products" and status == 200:
        skus = [p["sku"] for p in body]
        if len(skus) != len(set(skus)):
            out.append("body: a sku appears twice")
        elif skus != sorted(skus):
            out.append("body: not ordered by sku")
    if method == "get" and template == "/stats" and status == 200:
        o = body["orders"]
        if o["placed"] != o["confirmed"] + o["cancelled"] + o["pending"]:
            out.append("body/orders: placed %d != confirmed + cancelled + pending (%d)" % (
                o["placed"], o["confirmed"] + o["cancelled"] + o["pending"]))
        reasons = sum(body["cancelReasons"].values())
        if reasons != o["cancelled"]:
            out.append("body/cancelReasons: they add up to %d, cancelled is %d" % (
                reasons, o["cancelled"]))
        top = [(-p["quantity"], p["sku"]) for p in body["topProducts"]]
        if top != sorted(top):
            out.append("body/topProducts: not most units first, ties by sku")
        lat = body["sagaLatencyMs"]
        vals = [lat["p50"], lat["p95"], lat["p99"]]
        if all(v is not None for v in vals) and vals != sorted(vals):
            out.append("body/sagaLatencyMs: not p50 <= p95 <= p99")
        elif any(v is None for v in vals) and any(v is not None for v in vals):
            out.append("body/sagaLatencyMs: all null or none")
    return out


def order_rules(order, where):
    out = []
    items = order.get("items")
    if isinstance(items, list):
        total = sum(i["quantity"] * i["unitPriceCents"] for i in items)
        if total != order.get("totalCents"):
            out.append("%s/totalCents %r is not the sum of quantity * unitPriceCents (%d)" % (
                where, order.get("totalCents"), total))
        skus = [i["sku"] for i in items]
        if len(skus) != len(set(skus)):
            out.append("%s/items: a sku on more than one line" % where)
    if order.get("updatedAt", "") < order.get("createdAt", ""):
        out.append("%s: updatedAt before createdAt" % where)
    return out


def run_http(store, files, report):
    apis = []
    for uri, doc in sorted(store.docs.items(), key=lambda kv: (
            not kv[0].endswith("/openapi.yaml"), kv[0])):
        if uri.startswith("file:") and isinstance(doc, dict) and "openapi" in doc:
            apis.append(Api(store, uri))
    if not apis:
        die("no OpenAPI document in the schemas directory")
    store.openapi_problem_uri = apis[0].uri + "#/components/schemas/Problem"
    for f in files:
        path = Path(f)
        if not path.is_file():
            die("no such file: %s" % f)
        for where, _, value in records_of(path):
            if isinstance(value, Exception) or not isinstance(value, dict):
                report.item("http", where, ["not a JSON object: %s" % value])
                continue
            label, problems = check_exchange(store, apis, value)
            report.item("http", "%s %s" % (where, label or ""), problems)


# ---------------------------------------------------------------------------
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
