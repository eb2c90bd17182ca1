#!/usr/bin/python3
"""Drives a running shop over HTTP and records every exchange.

usage: tests/contract/drive_shop.py PORTS_JSON OUT.jsonl

PORTS_JSON maps each service to its HTTP port, e.g.
  {"order-service": 8080, "payment-service": 8081, "inventory-service": 8082,
   "email-service": 8083, "analytics-service": 8084}
Each request and its answer go to OUT.jsonl in the form validate.py --http
reads ({method, path, status, contentType, body, headers, service}). The
traffic covers every route and outcome of the contract: the four payment
outcomes and a sold-out sku, every 4xx of POST /orders, an idempotent
replay, a cancellation, lists and filters, and /livez, /readyz, /metrics
on every service and /stats. It waits (up to 60 s) for the sagas to end
before it reads the orders back. Python standard library only.
"""

import json
import sys
import time
import urllib.error
import urllib.request
import uuid

RECORDED_HEADERS = ("location", "allow", "retry-after")


class Shop:
    def __init__(self, ports, out):
        self.ports = ports
        self.out = out

    def call(self, service, method, path, body=None, headers=None, raw=None,
             ctype="application/json"):
        url = "http://127.0.0.1:%d%s" % (self.ports[service], path)
        data = raw if raw is not None else (
            json.dumps(body).encode() if body is not None else None)
        h = dict(headers or {})
        if data is not None and ctype:
            h["Content-Type"] = ctype
        req = urllib.request.Request(url, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                status, rh, payload = resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            status, rh, payload = e.code, dict(e.headers), e.read()
        ct = rh.get("Content-Type", "")
        text = payload.decode("utf-8", "replace")
        try:
            parsed = json.loads(text) if "json" in ct and text else text
        except ValueError:
            parsed = text
        self.out.write(json.dumps({
            "method": method, "path": path, "status": status, "contentType": ct,
            "body": parsed if text else None,
            "headers": {k: v for k, v in rh.items() if k.lower() in RECORDED_HEADERS},
            "service": service}) + "\n")
        self.out.flush()
        return status, parsed

    def status_of(self, order_id):
        _, body = self.call("order-service", "GET", "/orders/" + order_id)
        return body.get("status") if isinstance(body, dict) else None


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ports = json.loads(sys.argv[1])
    with open(sys.argv[2], "w") as out:
        drive(Shop(ports, out))


def drive(shop):
    o = "order-service"
    cust = "contract-" + uuid.uuid4().hex[:8]

    def order(items, token, email="ada@example.com"):
        return {"customerId": cust, "customerEmail": email, "items": items,
                "paymentToken": token}

    def place(items, token, headers=None):
        status, body = shop.call(o, "POST", "/orders", order(items, token), headers)
        if status != 202:
            sys.exit("drive_shop: POST /orders answered %d: %s" % (status, body))
        return body["orderId"]

    shop.call(o, "GET", "/products")
    ids = [
        place([{"sku": "mug-classic", "quantity": 2}, {"sku": "sticker-pack", "quantity": 1}],
              "tok_visa",
              {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}),
        place([{"sku": "hoodie-eda", "quantity": 1}], "tok_declined"),
        place([{"sku": "tshirt-kafka", "quantity": 1}], "tok_insufficient_funds"),
        place([{"sku": "poster-limited", "quantity": 6}], "tok_ok_contract"),
        place([{"sku": "hoodie-eda", "quantity": 100}], "tok_mastercard"),  # > 500000 cents
    ]
    key = str(uuid.uuid4())
    body = order([{"sku": "mug-classic", "quantity": 1}], "tok_mastercard")
    _, first = shop.call(o, "POST", "/orders", body, {"Idempotency-Key": key})
    ids.append(first["orderId"])
    shop.call(o, "POST", "/orders/%s/cancel" % first["orderId"])  # 202, or 409 if too late
    shop.call(o, "POST", "/orders", body, {"Idempotency-Key": key})  # the same 202 again
    shop.call(o, "POST", "/orders", order([{"sku": "mug-classic", "quantity": 3}],
                                          "tok_mastercard"), {"Idempotency-Key": key})  # 422
    shop.call(o, "POST", "/orders", body, {"Idempotency-Key": "not a key"})  # 400
    shop.call(o, "POST", "/orders", raw=b'{"customerId": x}')  # 400 malformed
    shop.call(o, "POST", "/orders", order([{"sku": "mug-classic", "quantity": "2"}], "tok_visa"))
    shop.call(o, "POST", "/orders", order([{"sku": "mug-deluxe", "quantity": 0},
                                           {"sku": "mug-classic", "quantity": 101}],
                                          "visa", "not-an-email"))  # 422, several errors
    shop.call(o, "POST", "/orders", order([], "tok_visa"))
    shop.call(o, "POST", "/orders", order([{"sku": "mug-classic", "quantity": 1}] * 2, "tok_visa"))
    shop.call(o, "POST", "/orders", {"customerId": cust})
    shop.call(o, "POST", "/orders", raw=b"customerId=x",
              ctype="application/x-www-form-urlencoded")  # 415
    shop.call(o, "POST", "/orders", raw=b'{"pad":"' + b"x" * 70000 + b'"}')  # 413
    shop.call(o, "GET", "/orders/not-a-uuid")
    shop.call(o, "GET", "/orders/" + str(uuid.uuid4()))
    shop.call(o, "POST", "/orders/%s/cancel" % uuid.uuid4())
    shop.call(o, "POST", "/orders/not-a-uuid/cancel")
    shop.call(o, "DELETE", "/orders/" + ids[0])  # 405
    shop.call(o, "GET", "/no-such-path")  # 404
    shop.call(o, "GET", "/orders?status=LOST")
    shop.call(o, "GET", "/orders?limit=0")

    deadline = time.monotonic() + 60
    while any(shop.status_of(i) == "PENDING" for i in ids):
        if time.monotonic() > deadline:
            sys.exit("drive_shop: sagas still PENDING after 60 s")
        time.sleep(0.5)
    time.sleep(3)  # refunds, releases and emails follow the terminal events
    for i in ids:
        shop.call(o, "GET", "/orders/" + i)
    shop.call(o, "POST", "/orders/%s/cancel" % ids[0])  # terminal: 409
    shop.call(o, "GET", "/orders?customerId=" + cust)
    shop.call(o, "GET", "/orders?customerId=%s&limit=2" % cust)
    shop.call(o, "GET", "/orders?customerId=%s&status=CANCELLED" % cust)
    shop.call(o, "GET", "/orders")
    for service in shop.ports:
        for path in ("/livez", "/readyz", "/metrics"):
            shop.call(service, "GET", path)
    shop.call("analytics-service", "GET", "/stats")
    # The confirmed order's shipment (delivered by now: SHIPPING_DELAY_MS is
    # short here), an order with none, an unknown one, a malformed id.
    for i in ids[:2]:
        shop.call("shipping-service", "GET", "/shipments/" + i)
    shop.call("shipping-service", "GET", "/shipments/" + str(uuid.uuid4()))
    shop.call("shipping-service", "GET", "/shipments/not-a-uuid")
    shop.call(o, "HEAD", "/products")


if __name__ == "__main__":
    main()
