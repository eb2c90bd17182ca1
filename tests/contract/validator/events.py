"""(b) events: CloudEvents and `kcat -J` records, each by itself and the
rules across the events of one order."""

import json
import re
from pathlib import Path

from .common import DEFAULT_TOPICS, EVENT_MAX_BYTES, EVENT_TYPES, SERVICES, die
from .loading import json_loads, records_of
from .store import schema_errors


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


class Saga:
    """What the events seen so far say about each order, for cross-event rules."""

    def __init__(self):
        self.by_id = {}  # id -> (where, canonical json, event)
        self.traceparent = {}  # subject -> (traceparent, where)
        self.terminal = {}  # subject -> (type, id, where)
        self.emails = {}  # (subject, template) -> (id, where)
        self.shipments = {}  # (subject, type) -> (id, shipmentId, where)
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
    if ev["type"].startswith("Shipment"):
        problems += check_shipment(saga, where, ev)
    if "causationid" in ev:
        if ev["causationid"] == eid:
            problems.append("causationid is the event's own id")
        else:
            saga.pending_causes.append((where, ev))
    return problems


def check_shipment(saga, where, ev):
    """An order has one shipment, and its stream one event of each type."""
    problems = []
    subject, eid, sid = ev["subject"], ev["id"], ev["data"]["shipmentId"]
    s = saga.shipments.setdefault((subject, ev["type"]), (eid, sid, where))
    if s[0] != eid:
        problems.append("%s for order %s already at %s (a shipment's stream has one of each)"
                        % (ev["type"], subject, s[2]))
    for (other_subject, _), (_, other_sid, other_where) in saga.shipments.items():
        if other_subject == subject and other_sid != sid:
            problems.append("shipment %s of order %s, which has shipment %s at %s (one "
                            "shipment per order)" % (sid, subject, other_sid, other_where))
            break
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
