"""(a) an OpenAPI 3.1 document."""

import re

from .common import DRAFT_2020_12, HTTP_METHODS
from .loading import file_uri
from .store import check_meta, check_refs, deref, pointer_escape, schema_errors, unknown_keys

OPENAPI_TOP = {"openapi", "info", "jsonSchemaDialect", "servers", "paths", "webhooks",
               "components", "security", "tags", "externalDocs"}
PATH_ITEM_KEYS = {"$ref", "summary", "description", "servers", "parameters"} | set(HTTP_METHODS)
OPERATION_KEYS = {"tags", "summary", "description", "externalDocs", "operationId",
                  "parameters", "requestBody", "responses", "callbacks", "deprecated",
                  "security", "servers"}
RESPONSE_CODE_RE = re.compile(r"^(default|[1-5]XX|[1-5][0-9][0-9])$")
MEDIA_TYPE_RE = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+*-]+$")


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
