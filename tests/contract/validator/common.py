"""The contract's facts, the report of what was checked, and errors."""

import re
import sys
from pathlib import Path

# The repository (tests/contract/validator/ is three levels down).
ROOT = Path(__file__).resolve().parents[3]

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
    "ShipmentCreated": ("shipping-service", "shipments"),
    "ShipmentDispatched": ("shipping-service", "shipments"),
    "ShipmentDelivered": ("shipping-service", "shipments"),
    "ShipmentCancelled": ("shipping-service", "shipments"),
}
SERVICES = ["order-service", "payment-service", "inventory-service", "email-service",
            "analytics-service", "shipping-service"]
DEFAULT_TOPICS = {"orders", "payments", "inventory", "notifications", "shipments"}
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


def rel(p):
    if str(p) == "-":
        return "<stdin>"
    try:
        return str(Path(p).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)
