"""Makes the vendored schema files of deploy/k8s/schemas/ from their upstream files.

    check-k8s --vendor kubernetes UPSTREAM.json OUT.json   a Kubernetes kind's JSON schema
    check-k8s --vendor crd UPSTREAM.yaml OUT.json           a CRD's schema, per served version

Both drop the `description` texts (most of the bytes; the validation never
reads them) and write compact JSON with sorted keys, so that the same
upstream file always gives the same bytes. Nothing else changes: the
keywords that validate are upstream's. deploy/k8s/schemas/SOURCES.md names
each upstream file (repository, tag, commit, path, licence, sha256).
"""

import hashlib
import json
from pathlib import Path

from check_compose.project import load_yaml


def strip_descriptions(node):
    """The schema without its `description` texts. A property that is named
    description has a schema (a dict) as value and stays."""
    if isinstance(node, dict):
        return {k: strip_descriptions(v) for k, v in node.items()
                if not (k == "description" and isinstance(v, str))}
    if isinstance(node, list):
        return [strip_descriptions(v) for v in node]
    return node


def crd_schemas(crd):
    """{"group", "kind", "versions": {version: openAPIV3Schema}} of a CRD's
    served versions."""
    spec = crd["spec"]
    return {
        "group": spec["group"],
        "kind": spec["names"]["kind"],
        "versions": {v["name"]: strip_descriptions(v["schema"]["openAPIV3Schema"])
                     for v in spec["versions"] if v.get("served")},
    }


def dump(document):
    return json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n"


def vendor(kind, source, out):
    data = Path(source).read_bytes()
    if kind == "kubernetes":
        document = strip_descriptions(json.loads(data))
    elif kind == "crd":
        document = crd_schemas(load_yaml(data.decode("utf-8")))
    else:
        raise SystemExit(f"check-k8s --vendor: {kind!r} is not kubernetes or crd")
    Path(out).write_text(dump(document), encoding="utf-8")
    print(f"{out}: from {source} (sha256 {hashlib.sha256(data).hexdigest()})")
