"""(a) an AsyncAPI 3.0 document, and what it says against the contract."""

import copy
import re
import urllib.parse

from .common import CE_HEADERS, DLQ_HEADERS, EVENT_TYPES
from .loading import file_uri
from .store import check_meta, check_refs, deref, pointer_escape, schema_errors, unknown_keys

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
            if len(fields) not in (2, 4):  # name partitions [replicas min.insync]
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
