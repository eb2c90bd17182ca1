"""Self-test (scripts/check-k8s --self-test, the first half of ctest's
unit.k8s.manifests): every check fails when the files it reads are wrong.

Each test copies the files the checks read into a scratch directory, breaks
one thing (an object that its schema refuses, a kind with no schema, a
field the schema does not name, a stale generated file, a consumer the code
does not have, a Secret missing, a daemon without its KafkaUser, a listener
that does not take the users' certificates, a kustomization that cannot
render), runs the checks on the copy and asserts that exactly the checks it
names FAIL, with the problem it expects. No cluster, no network.
"""

import tempfile
import unittest
from pathlib import Path

from check_compose import selftest as compose_selftest
from check_compose.project import Project
from check_compose.report import print_outcome

from .checks import KUSTOMIZATIONS, kubectl, run_checks
from .generate import GENERATED, SERVICES_FILE

# What the checks read, relative to the repository root.
INPUTS = ("deploy", "services", "tools/console/console.h")  # deploy/ has postgres/roles.sql
BASE, LOCAL = (f"render:{k}" for k in KUSTOMIZATIONS)
REFERENCES = f"references:{KUSTOMIZATIONS[1]}"

SOURCE = None
VERBOSE = False

# A Deployment with a string where an integer belongs and a misspelt field.
BROKEN_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: broken
spec:
  replicas: two
  selector:
    matchLabels:
      app: broken
  template:
    metadata:
      labels:
        app: broken
    spec:
      containers:
        - name: broken
          image: eventshop
          imagePullPolicyy: Always
"""


class Scratch(compose_selftest.Scratch):
    """A scratch copy of the files the checks read, to break (check-compose's,
    with this check's files)."""

    def __init__(self, directory):
        super().__init__(directory, inputs=INPUTS, source=SOURCE)

    def add_to_local(self, name, text):
        """A new file in the local overlay, listed among its resources."""
        self.path(f"{KUSTOMIZATIONS[1]}/{name}").write_text(text, encoding="utf-8")
        self.replace(f"{KUSTOMIZATIONS[1]}/kustomization.yaml", "  - secrets.yaml\n",
                     f"  - secrets.yaml\n  - {name}\n")

    def run(self):
        outcomes = list(run_checks(Project(self.root)))
        if VERBOSE:
            for outcome in outcomes:
                if outcome.status != "OK":
                    print_outcome(outcome)
        return outcomes


class ChecksFail(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="check-k8s-")
        self.scratch = Scratch(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def assertFails(self, checks, *problems):
        """Exactly these checks fail, and each expected text is in a problem."""
        outcomes = self.scratch.run()
        self.assertEqual({o.check for o in outcomes if o.status == "FAIL"}, set(checks))
        found = [p for o in outcomes for p in o.problems]
        for text in problems:
            self.assertTrue(any(text in p for p in found), f"no problem says {text!r}: {found}")

    def test_unchanged_copy_passes(self):
        self.assertFails(set())

    def test_broken_deployment_is_rejected(self):
        self.scratch.add_to_local("broken.yaml", BROKEN_DEPLOYMENT)
        self.assertFails({LOCAL}, "Deployment/broken: spec/replicas: 'two' is not of type",
                         "'imagePullPolicyy' was unexpected")

    def test_kind_without_schema_is_rejected(self):
        self.scratch.add_to_local("widget.yaml",
                                  "apiVersion: example.com/v1\nkind: Widget\n"
                                  "metadata:\n  name: w\n")
        self.assertFails({LOCAL}, "no schema for apiVersion example.com/v1 kind Widget")

    def test_custom_resource_against_its_crd(self):
        # A KafkaTopic whose partitions are text, in a generated file: its
        # CRD's schema refuses it, and the file is no longer what is generated.
        self.scratch.replace(GENERATED["topics"], "partitions: 3\n", "partitions: three\n")
        self.assertFails({"generated", BASE, LOCAL},
                         "KafkaTopic/notifications: spec/partitions: 'three' is not of type")

    def test_field_a_crd_does_not_name(self):
        self.scratch.replace("deploy/k8s/base/kafka.yaml", "  entityOperator:\n",
                             "  entityOperators:\n")
        self.assertFails({BASE, LOCAL}, "Kafka/eventshop: spec: Additional properties")

    def test_stale_generated_file(self):
        self.scratch.replace(GENERATED["topics"], "partitions: 3\n", "partitions: 4\n")
        self.assertFails({"generated"}, f"{GENERATED['topics']} is not what")

    def test_consumer_the_code_does_not_have(self):
        self.scratch.replace(SERVICES_FILE, "orders,payments,shipments ",
                             "orders,payments           ")
        self.assertFails({"generated", "code"},
                         "email-service: services.txt says it consumes orders,payments, "
                         "its main.c orders,payments,shipments")

    def test_topic_not_in_topics_txt(self):
        self.scratch.replace(SERVICES_FILE, "payments,inventory ", "payments,invent0ry ")
        self.assertFails({"generated", "code"}, "topic invent0ry is not in deploy/topics.txt")

    def test_daemon_missing_from_services_txt(self):
        self.scratch.replace(SERVICES_FILE, "\nshipping-service ", "\n# shipping-service ")
        self.assertFails({"generated", "code"},
                         "services/shipping-service is not in deploy/k8s/services.txt")

    def test_role_not_in_roles_sql(self):
        self.scratch.replace("deploy/postgres/roles.sql", "  ('shipping_service', :'pw_",
                             "  ('shipment_service', :'pw_")
        self.assertFails({"code"}, "deploy/postgres/roles.sql has the roles")

    def test_missing_secret(self):
        self.scratch.replace(GENERATED["secrets"], "  name: eventshop-jwt\n",
                             "  name: eventshop-jwt-old\n")
        self.assertFails({"generated", REFERENCES},
                         "Deployment/order-service names Secret eventshop-jwt, which is not in "
                         "namespace eventshop")

    def test_daemon_without_its_kafka_user(self):
        # Strimzi makes the certificate's Secret only for a KafkaUser of
        # that name: a renamed user leaves the Deployment's volume empty.
        self.scratch.replace(GENERATED["users"],
                             "  name: order-service\n  labels:\n    strimzi.io/cluster",
                             "  name: order-svc\n  labels:\n    strimzi.io/cluster")
        self.assertFails({"generated", REFERENCES},
                         "Deployment/order-service names Secret order-service, which is not in "
                         "namespace eventshop")

    def test_listener_without_mutual_tls(self):
        # The listener back on SCRAM: no user's certificate would be taken.
        self.scratch.replace("deploy/k8s/base/kafka.yaml",
                             "        authentication:\n          type: tls\n",
                             "        authentication:\n          type: scram-sha-512\n")
        self.assertFails({REFERENCES}, "KafkaUser/order-service: authentication tls, which no "
                         "listener of Kafka/eventshop accepts")

    def test_overlay_in_another_namespace(self):
        # Everything moves, but KEDA would still look for Kafka in the old one.
        self.scratch.replace(f"{KUSTOMIZATIONS[1]}/kustomization.yaml",
                             "namespace: eventshop\n", "namespace: shop\n")
        self.assertFails({REFERENCES}, "ScaledObject/order-service: bootstrapServers "
                         "eventshop-kafka-bootstrap.eventshop.svc:9093 is not in namespace shop")

    def test_kustomization_that_cannot_render(self):
        self.scratch.replace("deploy/k8s/base/kustomization.yaml", "  - kafka.yaml\n",
                             "  - kafka.yaml\n  - missing.yaml\n")
        self.assertFails({BASE, LOCAL}, "kubectl kustomize deploy/k8s/base")


def run_self_test(root, verbose=False):
    global SOURCE, VERBOSE
    SOURCE, VERBOSE = Path(root), verbose
    if not kubectl():
        print("check-k8s --self-test: no kubectl (apt-get install kubernetes-client)")
        return 1
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(ChecksFail)
    result = unittest.TextTestRunner(verbosity=2 if verbose else 1).run(suite)
    return 0 if result.wasSuccessful() else 1
