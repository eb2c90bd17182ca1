"""The checks of scripts/check-k8s, each a function that returns an Outcome
(check_compose.report: the same OK/FAIL/SKIP lines as check-compose).

The schemas are applied by python3-jsonschema (Draft 4: the dialect of both
the Kubernetes JSON schemas and the CRDs' OpenAPI v3 schemas, whose
`exclusiveMinimum` is a boolean). Like the API server's strict field
validation (kubectl apply's default), a field that the schema does not
name is an error: every object schema that lists its properties gets
additionalProperties false, unless it keeps unknown fields on purpose
(x-kubernetes-preserve-unknown-fields, as Kafka's `config` does).
"""

import json
import os
import re
import shutil
import subprocess

import yaml

from check_compose.project import DataError
from check_compose.report import Outcome, skipped

from .generate import generate, read_services

SCHEMAS = "deploy/k8s/schemas"
KUSTOMIZATIONS = ("deploy/k8s/base", "deploy/k8s/overlays/local")
# es_service_consume(&svc, (const char *const[]){svc.topics.orders, NULL}, ...
CONSUME_CALL = re.compile(r"es_service_consume\s*\((.*?)NULL\s*\}", re.S)
# deploy/postgres/roles.sql's list of roles: `  ('order_service', :'pw_order_service'),`
ROLES_FILE = "deploy/postgres/roles.sql"
ROLE_ROW = re.compile(r"^\s*\('([a-z_]+)', :'pw_", re.M)
# analytics-service names its topics in a list of its own (main.c).
TOPIC_FIELD = re.compile(r"topics\.(orders|payments|inventory|notifications|shipments)\b")


def kubectl():
    return os.environ.get("KUBECTL") or shutil.which("kubectl")


# ------------------------------------------------------------------ schemas

def strict(node):
    """The schema with additionalProperties false wherever it lists properties
    and says nothing of the others. The values of a `properties` map are
    schemas, its keys field names (a field may be called `properties`)."""
    if isinstance(node, list):
        return [strict(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties", "definitions") and isinstance(value, dict):
            out[key] = {name: strict(schema) for name, schema in value.items()}
        else:
            out[key] = strict(value)
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def read_json(path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ValueError(f"{path.name}: not JSON: {e}") from e


class Schemas:
    """The vendored schemas, by (apiVersion, kind)."""

    def __init__(self, project):
        import jsonschema

        self.validators = {}
        root = project.path(SCHEMAS)
        for path in sorted((root / "kubernetes").glob("*.json")):
            schema = read_json(path)
            for gvk in schema.get("x-kubernetes-group-version-kind", []):
                api = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
                self._add(jsonschema, api, gvk["kind"], schema, path)
        for path in sorted((root / "crds").glob("*.json")):
            crd = read_json(path)
            for version, schema in crd["versions"].items():
                self._add(jsonschema, f"{crd['group']}/{version}", crd["kind"], schema, path)

    def _add(self, jsonschema, api, kind, schema, path):
        schema = strict(schema)
        try:
            jsonschema.Draft4Validator.check_schema(schema)
        except jsonschema.exceptions.SchemaError as e:
            raise ValueError(f"{path.name}: {api} {kind}: not a schema: {e.message}") from e
        self.validators[(api, kind)] = jsonschema.Draft4Validator(schema)

    def errors(self, obj):
        """The object's schema errors, one line each ([] when valid)."""
        key = (str(obj.get("apiVersion")), str(obj.get("kind")))
        validator = self.validators.get(key)
        if validator is None:
            return [f"no schema for apiVersion {key[0]} kind {key[1]} in {SCHEMAS}/"]
        return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
                for e in sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.path])]


def describe(obj):
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{meta.get('name')}"


# ------------------------------------------------------------------ render

def render(project, directory):
    """(objects, None) or (None, why): `kubectl kustomize directory`."""
    try:
        done = subprocess.run([kubectl(), "kustomize", str(project.path(directory))],
                              capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"kubectl kustomize {directory}: {e}"
    if done.returncode != 0:
        return None, f"kubectl kustomize {directory}: {done.stderr.strip()}"
    try:
        return [o for o in yaml.load_all(done.stdout, Loader=yaml.SafeLoader) if o], None
    except yaml.YAMLError as e:
        return None, f"kubectl kustomize {directory}: not YAML: {e}"


# ------------------------------------------------------------------ checks

def check_generated(project):
    title = "the generated manifests are what services.txt, topics.txt and the code make"
    out = Outcome("generated", title)
    try:
        files = generate(project)
    except DataError as e:
        out.problems.append(str(e))
        return out
    for relative, text in files.items():
        path = project.path(relative)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.problems.append(f"{relative} is not what scripts/check-k8s --write makes: "
                                f"run it and commit the result")
    return out


def check_code(project):
    """services.txt names every daemon of services/, and what each consumes is
    what its main.c subscribes to."""
    out = Outcome("code", "services.txt names every daemon, what its code consumes, and the "
                          "roles of deploy/postgres/roles.sql")
    try:
        daemons = {d.name: d for d in read_services(project)}
        for name in project.daemons():
            if name not in daemons:
                out.problems.append(f"services/{name} is not in deploy/k8s/services.txt")
                continue
            calls = CONSUME_CALL.findall(project.read(f"services/{name}/main.c"))
            if len(calls) != 1:
                out.problems.append(f"services/{name}/main.c: {len(calls)} es_service_consume "
                                    f"calls, want one")
                continue
            code = TOPIC_FIELD.findall(calls[0])
            if not code:  # a list named elsewhere in main.c (analytics-service)
                code = TOPIC_FIELD.findall(project.read(f"services/{name}/main.c"))
            if sorted(set(code)) != sorted(daemons[name].consumes):
                out.problems.append(f"{name}: services.txt says it consumes "
                                    f"{','.join(daemons[name].consumes)}, its main.c "
                                    f"{','.join(sorted(set(code)))}")
        for name in daemons:
            if name not in project.daemons():
                out.problems.append(f"services.txt: {name} is not a daemon of services/")
        roles = sorted(ROLE_ROW.findall(project.read(ROLES_FILE)))
        if roles != sorted(d.role for d in daemons.values()):
            out.problems.append(f"{ROLES_FILE} has the roles {', '.join(roles)}; services.txt "
                                f"gives {', '.join(sorted(d.role for d in daemons.values()))}")
    except DataError as e:
        out.problems.append(str(e))
    return out


def referenced_secrets(obj):
    """The Secrets an object names: env, volumes, CloudNativePG roles, KEDA's
    TriggerAuthentication."""
    names = set()

    def walk(node, parent=None):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("secretKeyRef", "passwordSecret") and isinstance(value, dict):
                    names.add(value.get("name"))
                elif key == "secretName" and isinstance(value, str):
                    names.add(value)
                elif key == "secretTargetRef" and isinstance(value, list):
                    names.update(v.get("name") for v in value if isinstance(v, dict))
                walk(value, key)
        elif isinstance(node, list):
            for value in node:
                walk(value, parent)

    walk(obj.get("spec"))
    return names - {None}


def check_kustomization(project, directory, schemas):
    """Renders one kustomization and validates each object."""
    out = Outcome(f"render:{directory}",
                  f"{directory}: kubectl kustomize renders it; every object valid against "
                  f"its schema")
    objects, why = render(project, directory)
    if objects is None:
        out.problems.append(why)
        return out, None
    for obj in objects:
        if not isinstance(obj, dict):
            out.problems.append(f"not an object: {obj!r}"[:200])
            continue
        out.problems += [f"{describe(obj)}: {e}" for e in schemas.errors(obj)]
    return out, [o for o in objects if isinstance(o, dict)]


def namespace(obj):
    return (obj.get("metadata") or {}).get("namespace", "default")


def schema_errors():
    """What loading a broken schema file raises."""
    import jsonschema.exceptions

    return (ImportError, OSError, ValueError, KeyError, TypeError, AttributeError,
            jsonschema.exceptions.SchemaError)


def operator_secrets(objects):
    """(namespace, name) of the Secrets Strimzi makes for these objects, which
    no render holds: a Kafka's <cluster>-cluster-ca-cert (its CA), and a
    mutual-TLS KafkaUser's own, under its name (its certificate and key)."""
    made = set()
    for o in objects:
        name, spec = (o.get("metadata") or {}).get("name"), o.get("spec")
        if o.get("kind") == "Kafka":
            made.add((namespace(o), f"{name}-cluster-ca-cert"))
        elif (o.get("kind") == "KafkaUser" and isinstance(spec, dict)
              and (spec.get("authentication") or {}).get("type") == "tls"):
            made.add((namespace(o), name))
    return made


def listener_authentications(objects):
    """{(namespace, cluster): the authentication types its listeners accept}."""
    accepted = {}
    for o in objects:
        spec = o.get("spec")
        if o.get("kind") != "Kafka" or not isinstance(spec, dict):
            continue
        key = (namespace(o), (o.get("metadata") or {}).get("name"))
        for listener in (spec.get("kafka") or {}).get("listeners") or []:
            if isinstance(listener, dict):
                kind = (listener.get("authentication") or {}).get("type")
                accepted.setdefault(key, set()).add(kind)
    return accepted


def check_references(directory, objects):
    out = Outcome(f"references:{directory}",
                  f"{directory}: every Secret an object names is in its namespace (or made by "
                  f"an operator); every KafkaUser logs in as a listener accepts; KEDA reaches "
                  f"Kafka in that namespace")
    accepted = listener_authentications(objects)
    secrets = {(namespace(o), (o.get("metadata") or {}).get("name"))
               for o in objects if o.get("kind") == "Secret"} | operator_secrets(objects)
    for obj in objects:
        spec = obj.get("spec")
        for name in sorted(referenced_secrets(obj)):
            if (namespace(obj), name) not in secrets:
                out.problems.append(f"{describe(obj)} names Secret {name}, which is not in "
                                    f"namespace {namespace(obj)}")
        # A user whose kind of login no listener takes cannot connect at all.
        if obj.get("kind") == "KafkaUser" and isinstance(spec, dict):
            cluster = ((obj.get("metadata") or {}).get("labels") or {}).get("strimzi.io/cluster")
            kind = (spec.get("authentication") or {}).get("type")
            if kind not in accepted.get((namespace(obj), cluster), set()):
                out.problems.append(f"{describe(obj)}: authentication {kind}, which no "
                                    f"listener of Kafka/{cluster} accepts")
        # KEDA's operator connects from its own namespace, so the trigger
        # names the bootstrap Service with the namespace in it.
        if obj.get("kind") == "ScaledObject" and isinstance(spec, dict):
            for trigger in spec.get("triggers") or []:
                servers = str(((trigger or {}).get("metadata") or {}).get("bootstrapServers"))
                if f".{namespace(obj)}.svc:" not in servers:
                    out.problems.append(f"{describe(obj)}: bootstrapServers {servers} is not "
                                        f"in namespace {namespace(obj)}")
    return out


def run_checks(project):
    """Yields every check's Outcome."""
    yield check_generated(project)
    yield check_code(project)
    if not kubectl():
        title = "kubectl kustomize: SKIPPED, no kubectl (apt-get install kubernetes-client)"
        yield skipped("render", title)
        return
    try:
        schemas = Schemas(project)
    except schema_errors() as e:
        out = Outcome("schemas", f"the schemas of {SCHEMAS}/ load")
        out.problems.append(f"{type(e).__name__}: {e}")
        yield out
        return
    for directory in KUSTOMIZATIONS:
        outcome, objects = check_kustomization(project, directory, schemas)
        yield outcome
        # The base names Secrets that only an overlay brings: check whole
        # deployments, the overlays.
        if objects is not None and directory != KUSTOMIZATIONS[0]:
            yield check_references(directory, objects)


def write_generated(project):
    for relative, text in generate(project).items():
        path = project.path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {relative}")

