"""Validation with a store of every document in schemas/, and the checks
every schema document gets."""

import json
import urllib.parse
import warnings
from pathlib import Path

import jsonschema
from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.exceptions import SchemaError

try:  # jsonschema >= 4.18
    import referencing
    import referencing.jsonschema
    HAVE_REFERENCING = True
except ImportError:  # jsonschema 4.10 (Debian bookworm): RefResolver
    HAVE_REFERENCING = False

from .common import (DRAFT_2020_12, SCHEMA_KEYWORDS, SCHEMA_LIST_KEYWORDS,
                     SCHEMA_MAP_KEYWORDS)
from .loading import file_uri


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


def deref(store, uri, obj):
    """Follows a Reference Object; returns (uri, object)."""
    seen = 0
    while isinstance(obj, dict) and "$ref" in obj and seen < 16:
        uri, obj = store.resolve(uri, obj["$ref"])
        seen += 1
    return uri, obj


# ---------------------------------------------------------------------------
# What every schema document gets
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


def unknown_keys(obj, allowed, where):
    return ["%s: unknown field %r" % (where, k) for k in obj
            if k not in allowed and not str(k).startswith("x-")]
