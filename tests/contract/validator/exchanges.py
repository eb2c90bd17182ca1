"""(c) HTTP exchanges against the OpenAPI documents."""

import urllib.parse
from pathlib import Path

from .common import COMMON_PATHS, ORDERS_DEFAULT_LIMIT, die
from .loading import json_loads, records_of
from .store import deref, pointer_escape, schema_errors


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
