"""Loading: strict JSON (no duplicate keys, no NaN) and YAML (no duplicate
keys); the records of an input file."""

import json
import sys
from pathlib import Path

import yaml

from .common import rel


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
