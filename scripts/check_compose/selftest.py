"""Self-test (scripts/check-compose --self-test, ctest's unit.check_compose):
every check fails when the files it reads are wrong.

Each mutation below copies the files the checks read (project.INPUTS) into a
scratch directory, changes one thing (a service dropped, a wrong port, a
healthcheck removed, a port published too many, a topic missing, ...), runs
the checks on the copy and asserts that exactly the checks it names FAIL.
test_every_check_can_fail then asserts that every check the real files pass
is named by some mutation or by one of the dedicated tests. No network, no
container engine: docker-compose only reads files, and its tests are skipped
when it is not installed.
"""

import json
import shutil
import tempfile
import unittest
from collections import namedtuple
from pathlib import Path
from unittest import mock

import yaml

from . import compose
from .checks import run_checks
from .project import INPUTS, Project, load_yaml
from .report import print_outcome

# Set by run_self_test: the checkout to copy, and a build (or None).
SOURCE = None
BUILD_DIR = None
VERBOSE = False


class Scratch:
    """A scratch copy of the files the checks read, to mutate (inputs: those
    files, relative to the checkout source; check-k8s's self-test uses it
    with its own)."""

    def __init__(self, directory, inputs=INPUTS, source=None):
        self.root = Path(directory)
        for relative in inputs:
            source_path, target = (source or SOURCE) / relative, self.root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if source_path.is_dir():
                shutil.copytree(source_path, target,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source_path, target)

    def path(self, relative):
        return self.root / relative

    def replace(self, relative, old, new):
        """Replaces the one occurrence of old, which must be there."""
        text = self.path(relative).read_text(encoding="utf-8")
        if text.count(old) != 1:
            raise AssertionError(f"{relative}: {old!r} occurs {text.count(old)} times, want once")
        self.path(relative).write_text(text.replace(old, new, 1), encoding="utf-8")

    def edit_compose(self, change):
        """Calls change(services) on docker-compose.yml's services, then writes
        the file back (anchors and merge keys resolved, nothing shared)."""
        path = self.path(compose.COMPOSE_FILE)
        document = json.loads(json.dumps(load_yaml(path.read_text(encoding="utf-8"))))
        change(document["services"])
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")

    def run(self, build_dir=None, compose_config=False):
        outcomes = list(run_checks(Project(self.root), build_dir, compose_config))
        if VERBOSE:
            for outcome in outcomes:
                if outcome.status != "OK":
                    print_outcome(outcome)
        return outcomes


def failed_checks(outcomes):
    return {o.check for o in outcomes if o.status == "FAIL"}


def problems_of(outcomes, check):
    return [p for o in outcomes if o.check == check for p in o.problems]


# ---------------------------------------------------------------------------
# The mutations: a name, the checks that must fail, and the change.
# ---------------------------------------------------------------------------

Mutation = namedtuple("Mutation", "name fails change")


def edit(relative, old, new):
    """Replaces old, which must occur once, with new in the file."""
    return lambda scratch: scratch.replace(relative, old, new)


def compose_change(change):
    return lambda scratch: scratch.edit_compose(change)


def update(service, **keys):
    """Sets keys of a service of docker-compose.yml."""
    return compose_change(lambda services: services[service].update(keys))


def drop(service, key=None):
    """Removes a service of docker-compose.yml, or one of its keys."""
    if key is None:
        return compose_change(lambda services: services.pop(service))
    return compose_change(lambda services: services[service].pop(key))


def set_env(service, name, value):
    return compose_change(lambda services: services[service]["environment"].update({name: value}))


def add_daemon_directory(scratch):
    """A sixth daemon in services/, with its port in its main.c."""
    directory = scratch.path("services/refund-service")
    directory.mkdir()
    (directory / "CMakeLists.txt").write_text("add_executable(refund-service main.c)\n")
    (directory / "main.c").write_text("#define REFUND_HTTP_PORT 8085\n"
                                      "static const struct es_service_spec spec = {\n"
                                      "\t.name = \"refund-service\",\n"
                                      "\t.http_port = REFUND_HTTP_PORT,\n};\n")


CURL_8081 = ["CMD", "curl", "-fs", "http://127.0.0.1:8081/readyz"]
TOPICS_OTHER_FILE = ["shopctl", "create-topics", "/app/deploy/other.txt"]
NOT_AFTER_TOPICS = {"condition": "service_started"}
ROLES_OTHER_FILE = ["psql", "-f", "/deploy/postgres/other.sql"]

MUTATIONS = [
    # The daemons of services/ and their ports in the code.
    Mutation("a daemon's service dropped", {"daemon"}, drop("payment-service")),
    Mutation("a daemon directory without a service",
             {"daemon", "topics", "runtime-stage", "db-roles"},
             add_daemon_directory),
    Mutation("HTTP_PORT other than the code's", {"daemon"},
             set_env("order-service", "HTTP_PORT", "8085")),
    Mutation("the port changed in the code, not in the file", {"daemon"},
             edit("services/payment-service/main.c",
                  "PAYMENT_HTTP_PORT 8081", "PAYMENT_HTTP_PORT 8091")),
    Mutation("a port not defined in the code", {"daemon-ports", "daemon"},
             edit("services/inventory-service/main.c", "#define INVENTORY_HTTP_PORT 8082\n", "")),
    Mutation("a daemon without healthcheck", {"daemon", "all-services"},
             drop("inventory-service", "healthcheck")),
    Mutation("a healthcheck on another port", {"daemon"},
             compose_change(lambda s: s["order-service"]["healthcheck"].update(test=CURL_8081))),
    Mutation("a KAFKA_* setting on a daemon", {"daemon"},
             set_env("payment-service", "KAFKA_ACKS", "1")),
    Mutation("a daemon not waiting for the topics job", {"daemon"},
             compose_change(lambda s: s["email-service"]["depends_on"].update(
                 topics=NOT_AFTER_TOPICS))),
    Mutation("a second image build", {"daemon", "topics-job"}, update("order-service", build=".")),
    # The database roles.
    Mutation("a daemon logs in as the administrator", {"daemon"},
             set_env("payment-service", "DATABASE_URL",
                     "postgresql://eventshop:eventshop@postgres:5432/eventshop")),
    Mutation("a daemon's password not the one db-roles sets", {"daemon"},
             set_env("order-service", "PGPASSWORD", "guess")),
    Mutation("a daemon not waiting for db-roles", {"daemon"},
             compose_change(lambda s: s["shipping-service"]["depends_on"].update(
                 {"db-roles": NOT_AFTER_TOPICS}))),
    Mutation("db-roles runs another file", {"db-roles"},
             update("db-roles", command=ROLES_OTHER_FILE)),
    Mutation("a role without its password", {"db-roles", "daemon"},
             compose_change(lambda s: s["db-roles"]["environment"].pop(
                 "EMAIL_SERVICE_DB_PASSWORD"))),
    Mutation("a daemon's role missing from roles.sql", {"db-roles"},
             edit("deploy/postgres/roles.sql", "  ('email_service', :'pw_email_service'),\n", "")),
    # Published ports.
    Mutation("a published port too many", {"published"},
             update("payment-service", ports=["127.0.0.1:8081:8081"])),
    Mutation("a port published on every interface", {"published"},
             update("order-service", ports=["8080:8080"])),
    Mutation("the stats port not published", {"published"}, drop("analytics-service", "ports")),
    # Every service; the infrastructure.
    Mutation("a service without memory limit", {"all-services"}, drop("mailpit", "mem_limit")),
    Mutation("Kafka 3", {"kafka"}, update("kafka", image="apache/kafka:3.7.0")),
    Mutation("Kafka's offsets topic at default replication", {"kafka"},
             compose_change(lambda s: s["kafka"]["environment"].pop(
                 "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"))),
    Mutation("PostgreSQL 14", {"postgres"}, update("postgres", image="postgres:14")),
    Mutation("Mailpit unpinned", {"mailpit"}, update("mailpit", image="axllent/mailpit:latest")),
    # The topics job and the topics.
    Mutation("the topics job reads another file", {"topics-job"},
             update("topics", command=TOPICS_OTHER_FILE)),
    Mutation("a dead-letter topic missing from deploy/topics.txt", {"topics"},
             edit("deploy/topics.txt", "dlq.email-service      1           3         2\n", "")),
    Mutation("a contract topic missing from deploy/topics.txt", {"topics"},
             edit("deploy/topics.txt", "notifications          3           3         2\n", "")),
    Mutation("a TOPIC_* override not in deploy/topics.txt", {"topics"},
             set_env("analytics-service", "TOPIC_ORDERS", "orders-v2")),
    Mutation("deploy/topics.txt not as shopctl reads it", {"topics"},
             edit("deploy/topics.txt", "orders                 6           3         2\n", "orders\n")),
    # The files themselves.
    Mutation("docker-compose.yml not YAML", {"compose-yaml"},
             lambda s: s.path("docker-compose.yml").write_text("services: [\n")),
    Mutation(".dockerignore missing", {"files"}, lambda s: s.path(".dockerignore").unlink()),
    # The Dockerfile against CI.
    Mutation(".ci/run tests only the unit tests", {"ci"},
             edit(".ci/run", "ES_SKIP_INSTALL=1 scripts/test\n",
                  "ES_SKIP_INSTALL=1 scripts/test -L unit\n")),
    Mutation("a runtime stage on Ubuntu", {"stages"},
             edit("Dockerfile", "FROM debian:bookworm-slim AS runtime",
                  "FROM ubuntu:24.04 AS runtime")),
    Mutation("a package installed besides install-deps", {"build-packages"},
             edit("Dockerfile", "RUN /src/scripts/install-deps && ",
                  "RUN /src/scripts/install-deps && apt-get install -y libssl-dev && ")),
    Mutation("another build type in the image", {"configure"},
             edit("Dockerfile", "-DCMAKE_BUILD_TYPE=RelWithDebInfo -DES_FAULT",
                  "-DCMAKE_BUILD_TYPE=Debug -DES_FAULT")),
    Mutation("fault points in the image", {"configure"},
             edit("Dockerfile", " -DES_FAULT_POINTS=OFF", "")),
    Mutation("scripts/build's options changed, not the image's", {"configure"},
             edit("scripts/build", "-DES_WERROR=ON", "-DES_WERROR=OFF")),
    Mutation("other build options", {"build"},
             edit("Dockerfile", 'cmake --build /src/build -j "$(nproc)"',
                  "cmake --build /src/build -j 1")),
    Mutation("a runtime library not installed", {"runtime-packages"},
             edit("Dockerfile", " libpq5 ", " ")),
    Mutation("a new library in install-deps", {"runtime-packages"},
             edit("scripts/install-deps", "  libpq-dev\n", "  libpq-dev\n  libssl-dev\n")),
    Mutation("the image runs as root", {"runtime-stage"},
             edit("Dockerfile", "USER 10001:10001", "USER root")),
    Mutation("deploy/ not in the image", {"runtime-stage"},
             edit("Dockerfile", "COPY deploy/ /app/deploy/\n", "")),
]

# Checks shown to fail by their own test below rather than by a mutation.
DEDICATED = {
    "compose-config": "test_compose_rejects_an_invalid_file, test_docker_compose_missing",
    "compose-v2-config": "test_compose_rejects_an_invalid_file (when Compose v2 is installed)",
    "runtime-libraries": "test_runtime_libraries",
}


class CheckComposeSelfTest(unittest.TestCase):

    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="check-compose-")
        self.addCleanup(tmp.cleanup)
        self.scratch = Scratch(tmp.name)

    def assert_fails(self, outcomes, checks, what):
        failed = failed_checks(outcomes)
        self.assertEqual(failed, set(checks), f"{what}: FAIL from {sorted(failed)}, "
                         f"want {sorted(checks)}")

    def test_the_files_pass(self):
        self.assert_fails(self.scratch.run(), set(), "the files as they are")

    def test_compose_file_rewritten_unchanged_passes(self):
        # The mutations write docker-compose.yml back resolved: by itself that changes nothing.
        self.scratch.edit_compose(lambda services: None)
        self.assert_fails(self.scratch.run(), set(), "docker-compose.yml rewritten")

    def test_mutations(self):
        for mutation in MUTATIONS:
            with self.subTest(mutation.name):
                with tempfile.TemporaryDirectory(prefix="check-compose-") as tmp:
                    scratch = Scratch(tmp)
                    if VERBOSE:
                        print(f"\n--- {mutation.name}")
                    mutation.change(scratch)
                    self.assert_fails(scratch.run(), mutation.fails, mutation.name)

    def test_every_check_can_fail(self):
        compose_config = shutil.which("docker-compose") is not None
        ran = {o.check for o in self.scratch.run(BUILD_DIR, compose_config) if o.status != "SKIP"}
        covered = set(DEDICATED).union(*(m.fails for m in MUTATIONS))
        self.assertEqual(ran - covered, set(), "checks no mutation shows failing")

    def test_compose_rejects_an_invalid_file(self):
        if not shutil.which("docker-compose"):
            self.skipTest("docker-compose not installed")
        self.scratch.edit_compose(lambda s: s["mailpit"].update(depends_on=["nosuch"]))
        outcomes = self.scratch.run(compose_config=True)
        want = {"compose-config"}
        if any(o.check == "compose-v2-config" and not o.skipped for o in outcomes):
            want.add("compose-v2-config")
        self.assert_fails(outcomes, want, "mailpit depends on a service that does not exist")

    def test_docker_compose_missing(self):
        with mock.patch.object(compose.shutil, "which", return_value=None):
            outcomes = self.scratch.run(compose_config=True)
        self.assert_fails(outcomes, {"compose-config"}, "no docker-compose")

    def test_runtime_libraries(self):
        runs = self.scratch.run(BUILD_DIR)
        if any(o.check == "runtime-libraries" and o.skipped for o in runs):
            self.skipTest(f"no complete build in {BUILD_DIR} (BUILD_DIR)")
        # Only librdkafka is asserted on: a sanitizer build also loads libasan.
        self.assertFalse([p for p in problems_of(runs, "runtime-libraries") if "librdkafka" in p])
        self.scratch.replace("Dockerfile", "librdkafka1 ", "")
        runs = self.scratch.run(BUILD_DIR)
        self.assertIn("runtime-libraries", failed_checks(runs))
        self.assertTrue([p for p in problems_of(runs, "runtime-libraries")
                         if p.startswith("librdkafka.so")], problems_of(runs, "runtime-libraries"))


def run_self_test(source, build_dir, verbose=False):
    """Runs the self-test on a copy of the checkout at source; returns the
    exit status (0 when every check failed where it must)."""
    global SOURCE, BUILD_DIR, VERBOSE
    SOURCE, BUILD_DIR, VERBOSE = Path(source), build_dir, verbose
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(CheckComposeSelfTest)
    result = unittest.TextTestRunner(verbosity=2 if verbose else 1).run(suite)
    return 0 if result.wasSuccessful() else 1
