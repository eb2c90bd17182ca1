"""Checks of docker-compose.yml: Compose's own validation, then the file
against the project's data (daemons, their ports, the topics)."""

import re
import shutil
import subprocess

import yaml

from .project import load_yaml
from .report import Outcome, skipped

COMPOSE_FILE = "docker-compose.yml"
TOPICS_COMMAND = ["shopctl", "create-topics", "/app/deploy/topics.txt"]
# Each daemon's: its service's own role (deploy/postgres/roles.sql), with
# no password in the URL: libpq reads PGPASSWORD.
DATABASE_URL = "postgresql://{role}@postgres:5432/eventshop"
ROLES_COMMAND = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "postgres", "-U", "eventshop",
                 "-d", "eventshop", "-f", "/deploy/postgres/roles.sql"]
ROLES_MOUNT = "./deploy/postgres:/deploy/postgres"
KAFKA_BOOTSTRAP = "kafka:9092"
SMTP_URL = "smtp://mailpit:1025"

# What the compose file publishes on the host, by design: the REST front
# door, the read side's GET /stats, GET /shipments/{orderId}, the live web
# console (each on its port from the code) and Mailpit's web UI. Everything
# else answers only inside the Compose network.
PUBLISHED_DAEMONS = ("order-service", "analytics-service", "shipping-service",
                     "eventshop-console")
MAILPIT_UI_PORT = 8025
LOOPBACK = "127.0.0.1"

# Kafka, KRaft single node: what makes one broker work on its own.
KAFKA_SETTINGS = {
    "KAFKA_PROCESS_ROLES": "broker,controller",
    "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
    "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://kafka:9092",
    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
    "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
}
KAFKA_REQUIRED = ("KAFKA_NODE_ID", "KAFKA_CONTROLLER_QUORUM_VOTERS", "KAFKA_HEAP_OPTS")


# ---------------------------------------------------------------------------
# Compose's own validation
# ---------------------------------------------------------------------------

def check_compose_v1(root):
    """docker-compose.yml is a valid Compose file, as Compose itself reads it.

    Debian's docker-compose (1.29) validates the file against the
    compose-spec JSON Schema it ships and resolves it (merge keys,
    depends_on naming services that exist) without contacting an engine.
    The project's own checks below assume a file Compose accepts.
    """
    command = ["docker-compose", "-f", COMPOSE_FILE, "config", "-q"]
    if not shutil.which("docker-compose"):
        return Outcome("compose-config", "docker-compose: " + " ".join(command),
                       ["docker-compose not found: "
                        "apt-get install --no-install-recommends docker-compose"])
    version = _output(["docker-compose", "version", "--short"], root) or "unknown"
    return _config_outcome("compose-config", f"docker-compose {version}", command, root)


def check_compose_v2(root):
    """The same with Compose v2 (`docker compose config -q`), when installed:
    its schema is newer than 1.29's and is what users run."""
    command = ["docker", "compose", "-f", COMPOSE_FILE, "config", "-q"]
    if not shutil.which("docker") or _output(["docker", "compose", "version"], root) is None:
        return skipped("compose-v2-config",
                       "docker compose (v2 plugin) not installed: Compose v2's own check not run")
    version = _output(["docker", "compose", "version", "--short"], root) or "unknown"
    return _config_outcome("compose-v2-config", f"docker compose {version}", command, root)


def _output(command, cwd):
    """The command's standard output, or None when it fails."""
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _config_outcome(check, tool, command, cwd):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    title = f"{tool}: {' '.join(command)}"
    if result.returncode == 0:
        return Outcome(check, title)
    output = (result.stdout + result.stderr).strip().splitlines()
    return Outcome(check, title + ":", output or [f"exit status {result.returncode}"])


def load_services(root):
    """(services, None) from docker-compose.yml, or (None, a FAIL outcome)."""
    title = f"{COMPOSE_FILE}: YAML with a services mapping"
    try:
        compose = load_yaml((root / COMPOSE_FILE).read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        return None, Outcome("compose-yaml", title, str(e).splitlines())
    services = compose.get("services") if isinstance(compose, dict) else None
    if not isinstance(services, dict):
        return None, Outcome("compose-yaml", title, ["no services mapping"])
    return services, None


# ---------------------------------------------------------------------------
# Reading a service
# ---------------------------------------------------------------------------

def env_of(service):
    """A service's environment as {name: string or None}, from either syntax."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def deps_of(service):
    """A service's depends_on as {service: condition}, from either syntax."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {d: "service_started" for d in deps}
    return {k: (v or {}).get("condition", "service_started") for k, v in deps.items()}


def healthcheck_test(service):
    """The healthcheck's command as one string, or None when there is none."""
    hc = service.get("healthcheck")
    if not hc or hc.get("disable"):
        return None
    test = hc.get("test")
    if isinstance(test, list):
        if not test or test[0] == "NONE":
            return None
        return " ".join(str(x) for x in (test[1:] if test[0] in ("CMD", "CMD-SHELL") else test))
    return test


def has_memory_limit(service):
    limits = ((service.get("deploy") or {}).get("resources") or {}).get("limits")
    return bool(service.get("mem_limit") or limits)


def published_ports(service):
    """Each `ports` entry as (entry, host_ip, host_port, container_port); ports
    are strings, host_ip "" when the entry binds every interface."""
    out = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            out.append((entry, str(entry.get("host_ip", "")), str(entry.get("published", "")),
                        str(entry.get("target", ""))))
            continue
        parts = str(entry).split("/")[0].split(":")
        host_ip = parts[0] if len(parts) == 3 else ""
        host_port = parts[-2] if len(parts) >= 2 else ""
        out.append((entry, host_ip, host_port, parts[-1]))
    return out


def _want(problems, what, got, want):
    if got != want:
        problems.append(f"{what}={got!r}, want {want!r}")


# ---------------------------------------------------------------------------
# The infrastructure services
# ---------------------------------------------------------------------------

def check_kafka(services):
    """Kafka is the official apache/kafka image, 4.x and pinned, as one KRaft
    node (broker and controller in one process) with every internal topic
    at replication 1, no initial rebalance delay, a heap that fits its
    memory limit, and a healthcheck that asks the broker itself.

    The daemons need Kafka 4's protocol (the test suite runs 4.x); a single
    node with the default replication factor of 3 would never create its
    offsets topic, and the daemons wait for `service_healthy`.
    """
    title = ("kafka: apache/kafka 4.x, KRaft single node (broker,controller), replication 1, "
             "no initial rebalance delay, heap set, healthcheck")
    if "kafka" not in services:
        return Outcome("kafka", title, ["no service kafka"])
    kafka = services["kafka"]
    env = env_of(kafka)
    problems = []
    if not re.fullmatch(r"apache/kafka:4\.\d+\.\d+", str(kafka.get("image", ""))):
        problems.append(f"image {kafka.get('image')!r}: want apache/kafka:4.x.y, pinned")
    for name, value in KAFKA_SETTINGS.items():
        _want(problems, name, env.get(name), value)
    problems += [f"{name} not set" for name in KAFKA_REQUIRED if not env.get(name)]
    listeners = env.get("KAFKA_LISTENERS") or ""
    problems += [f"KAFKA_LISTENERS has no {proto} listener"
                 for proto in ("PLAINTEXT://", "CONTROLLER://") if proto not in listeners]
    test = healthcheck_test(kafka) or ""
    if not re.search(r"kafka-(broker-api-versions|topics)\.sh .*--bootstrap-server localhost:9092",
                     test):
        problems.append("healthcheck: want kafka-broker-api-versions.sh or kafka-topics.sh "
                        "against localhost:9092")
    return Outcome("kafka", title, problems)


def role_of(daemon):
    """The daemon's database role: order-service's is order_service."""
    return daemon.replace("-", "_")


def password_var(role):
    """The variable roles.sql reads the role's password from."""
    return f"{role.upper()}_DB_PASSWORD"


def check_postgres(services):
    """PostgreSQL is the official image, 15 or 16 (the versions the tests run),
    with the administrator and database that the db-roles job and the
    daemons' DATABASE_URL use, and a pg_isready healthcheck (the daemons
    wait for it to be healthy)."""
    title = "postgres: official image 15/16, database eventshop, pg_isready healthcheck"
    if "postgres" not in services:
        return Outcome("postgres", title, ["no service postgres"])
    pg = services["postgres"]
    problems = []
    if not re.fullmatch(r"postgres:1[56](\.\d+)?(-[a-z]+)?", str(pg.get("image", ""))):
        problems.append(f"image {pg.get('image')!r}: want postgres:15 or postgres:16")
    env = env_of(pg)
    for name in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"):
        if env.get(name) != "eventshop":
            problems.append(f"{name}={env.get(name)!r}, "
                            "want 'eventshop' (db-roles' administrator and database)")
    if "pg_isready" not in (healthcheck_test(pg) or ""):
        problems.append("healthcheck: want pg_isready")
    return Outcome("postgres", title, problems)


def check_mailpit(services):
    """Mailpit, where email-service sends its mail over SMTP, is a pinned
    axllent/mailpit with its own readiness probe as healthcheck
    (email-service waits for it to be healthy)."""
    title = "mailpit: axllent/mailpit pinned, readyz healthcheck"
    if "mailpit" not in services:
        return Outcome("mailpit", title, ["no service mailpit"])
    mailpit = services["mailpit"]
    problems = []
    if not re.fullmatch(r"axllent/mailpit:v?\d+\.\d+\.\d+", str(mailpit.get("image", ""))):
        problems.append(f"image {mailpit.get('image')!r}: want axllent/mailpit, pinned")
    if not re.search(r"readyz|livez", healthcheck_test(mailpit) or ""):
        problems.append("healthcheck: want /mailpit readyz or its /livez")
    return Outcome("mailpit", title, problems)


# ---------------------------------------------------------------------------
# The topics job and the topics
# ---------------------------------------------------------------------------

def image_of_topics_job(services):
    return (services.get("topics") or {}).get("image")


def check_topics_job(services):
    """The `topics` service is the one that builds the image (from the
    top-level Dockerfile, under a name the daemons then run), and runs
    `shopctl create-topics /app/deploy/topics.txt` once Kafka is healthy.

    One build means one image for all daemons; the daemons wait for this
    job to complete, so their topics exist with the partition counts of
    deploy/topics.txt before any of them produces or consumes.
    """
    topics = services.get("topics")
    image = image_of_topics_job(services)
    title = (f"topics: builds {image} from the Dockerfile, runs "
             f"{' '.join(TOPICS_COMMAND[:2])} {TOPICS_COMMAND[2]} after kafka is healthy")
    if topics is None:
        return Outcome("topics-job", title, ["no service topics"])
    problems = []
    build = topics.get("build")
    build_keys = {"context": build} if isinstance(build, str) else (build or {})
    dockerfile = build_keys.get("dockerfile", "Dockerfile")
    if build_keys.get("context") not in (".", "./") or dockerfile != "Dockerfile":
        problems.append(f"build: {build!r}, want context . and the top-level Dockerfile")
    if not image:
        problems.append("no image name: the daemons must run the image it builds")
    _want(problems, "command", topics.get("command"), TOPICS_COMMAND)
    _want(problems, "KAFKA_BOOTSTRAP_SERVERS", env_of(topics).get("KAFKA_BOOTSTRAP_SERVERS"),
          KAFKA_BOOTSTRAP)
    if deps_of(topics).get("kafka") != "service_healthy":
        problems.append("does not wait for kafka: service_healthy")
    builders = [name for name, s in services.items() if s.get("build")]
    if builders != ["topics"]:
        problems.append(f"services with a build section: {builders}, want only topics "
                        "(one image, built once)")
    return Outcome("topics-job", title, problems)


def check_topics(services, daemons, topic_file, contract_topics):
    """deploy/topics.txt, which the topics job creates, holds every topic a
    daemon of the compose file uses: the contract's topics
    (schemas/asyncapi.yaml, the daemons' defaults), each daemon's
    dead-letter topic dlq.<daemon>, and any topic a TOPIC_* variable of the
    compose file names instead.

    A topic not in the file is not created before the daemons start: a
    consumer would find it missing, and a producer would leave it to the
    broker's automatic creation with its default partition count instead
    of the file's.
    """
    title = (f"deploy/topics.txt ({len(topic_file)} topics): every topic the daemons use, "
             "the contract's, dlq.<daemon> of each and TOPIC_* overrides")
    problems = [f"{topic}: used by default (schemas/asyncapi.yaml), not in deploy/topics.txt"
                for topic in sorted(contract_topics - set(topic_file))]
    for daemon in daemons:
        for name, value in sorted(env_of(services.get(daemon) or {}).items()):
            if name.startswith("TOPIC_") and value not in topic_file:
                problems.append(f"{daemon}: {name}={value!r} is not in deploy/topics.txt")
    return Outcome("topics", title, problems)


# ---------------------------------------------------------------------------
# The database roles
# ---------------------------------------------------------------------------

def check_db_roles(services, daemons, roles):
    """The `db-roles` job runs deploy/postgres/roles.sql (mounted from the
    checkout) with psql as the administrator once PostgreSQL is healthy,
    with a password variable for every role of the script's list; and every
    daemon of services/ has its role in that list.

    The daemons wait for this job: their roles and schemas exist before any
    of them logs in, and a daemon without a role could not log in at all.
    """
    title = (f"db-roles: psql -f /deploy/postgres/roles.sql after postgres is healthy, "
             f"a password for each of its {len(roles)} roles, one for each daemon")
    job = services.get("db-roles")
    if job is None:
        return Outcome("db-roles", title, ["no service db-roles"])
    problems = []
    if not re.fullmatch(r"postgres:1[56](\.\d+)?(-[a-z]+)?", str(job.get("image", ""))):
        problems.append(f"image {job.get('image')!r}: want postgres:15 or 16 (psql's \\getenv)")
    _want(problems, "command", job.get("command"), ROLES_COMMAND)
    mounts = [str(v).rsplit(":ro", 1)[0] for v in job.get("volumes") or []]
    if ROLES_MOUNT not in mounts:
        problems.append(f"volumes {job.get('volumes')!r}: want {ROLES_MOUNT}:ro")
    if deps_of(job).get("postgres") != "service_healthy":
        problems.append("does not wait for postgres: service_healthy")
    env = env_of(job)
    problems += [f"no {password_var(role)} for role {role}" for role in roles
                 if not env.get(password_var(role))]
    problems += [f"{daemon}: no role {role_of(daemon)} in deploy/postgres/roles.sql"
                 for daemon in daemons if role_of(daemon) not in roles]
    return Outcome("db-roles", title, problems)


# ---------------------------------------------------------------------------
# The daemons
# ---------------------------------------------------------------------------

def check_daemon(services, daemon, port, image):
    """A daemon of services/ runs as designed: a service of its name, running
    the image the topics job built with the daemon as command, its port
    from the code as HTTP_PORT, bound beyond loopback, reaching Kafka,
    PostgreSQL (and, for email-service, Mailpit) by their service names, a
    healthcheck on its own /readyz, a memory limit, and started only after
    Kafka and PostgreSQL are healthy and the topics and db-roles jobs
    succeeded. It logs in as its own role, with the password db-roles gave
    that role.

    KAFKA_* variables other than the bootstrap servers are passed to
    librdkafka as settings, so none may be set by accident.
    """
    title = (f"{daemon}: image {image}, port {port or '?'}, environment, /readyz healthcheck, "
             "its own database role, starts after kafka, postgres, topics and db-roles")
    service = services.get(daemon)
    if service is None:
        return Outcome("daemon", f"{daemon}: a service in {COMPOSE_FILE}",
                       [f"no service {daemon} for services/{daemon}"])
    problems = []
    if port is None:
        problems.append(f"no port in services/{daemon}'s code to compare HTTP_PORT with")
    if service.get("image") != image:
        problems.append(f"image {service.get('image')!r}, want {image!r} (built by topics)")
    if service.get("build"):
        problems.append("a build section: the daemons run the image the topics job builds")
    _want(problems, "command", service.get("command"), [daemon])
    problems += _daemon_env_problems(daemon, env_of(service), port)
    problems += _daemon_password_problems(daemon, env_of(service),
                                          env_of(services.get("db-roles") or {}))
    problems += _daemon_healthcheck_problems(service, port)
    problems += _daemon_deps_problems(daemon, deps_of(service))
    if not service.get("mem_limit"):
        problems.append("no mem_limit")
    return Outcome("daemon", title, problems)


def _daemon_healthcheck_problems(service, port):
    test = healthcheck_test(service) or ""
    port_pattern = r"\d+" if port is None else str(port)
    if re.search(rf"\bcurl -fs\b.*http://127\.0\.0\.1:{port_pattern}/readyz\b", test):
        return []
    return [f"healthcheck {test!r}: want curl -fs http://127.0.0.1:{port or '<port>'}/readyz"]


def _daemon_env_problems(daemon, env, port):
    want = {
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA_BOOTSTRAP,
        "DATABASE_URL": DATABASE_URL.format(role=role_of(daemon)),
        "HTTP_BIND": "0.0.0.0",
    }
    if port is not None:
        want["HTTP_PORT"] = str(port)
    if daemon == "email-service":
        want["SMTP_URL"] = SMTP_URL
    problems = []
    for name, value in want.items():
        _want(problems, name, env.get(name), value)
    extra_kafka = sorted(k for k in env
                         if k.startswith("KAFKA_") and k != "KAFKA_BOOTSTRAP_SERVERS")
    if extra_kafka:
        problems.append(f"{', '.join(extra_kafka)}: every KAFKA_* goes to librdkafka")
    return problems


def _daemon_password_problems(daemon, env, roles_env):
    var = password_var(role_of(daemon))
    if env.get("PGPASSWORD") and env.get("PGPASSWORD") == roles_env.get(var):
        return []
    return [f"PGPASSWORD={env.get('PGPASSWORD')!r}: want db-roles' {var}, "
            f"{roles_env.get(var)!r}"]


def _daemon_deps_problems(daemon, deps):
    want = {"kafka": "service_healthy", "postgres": "service_healthy",
            "topics": "service_completed_successfully",
            "db-roles": "service_completed_successfully"}
    if daemon == "email-service":
        want["mailpit"] = "service_healthy"
    return [f"depends_on {name}: {deps.get(name)!r}, want {condition}"
            for name, condition in want.items() if deps.get(name) != condition]


def check_all_services(services):
    """Every service has a memory limit and, unless it is a one-shot job that
    others wait for by its exit status, a healthcheck; and no service waits
    for another to be healthy when that one has no healthcheck.

    Without a limit one runaway container takes the machine; without a
    healthcheck `service_healthy` can never be met and the stack hangs.
    """
    one_shot = sorted({dep for s in services.values() for dep, c in deps_of(s).items()
                       if c == "service_completed_successfully"})
    title = (f"all {len(services)} services: memory limit; healthcheck on each long-running one "
             f"(one-shot: {', '.join(one_shot) or 'none'})")
    problems = []
    for name, service in services.items():
        if not has_memory_limit(service):
            problems.append(f"{name}: no memory limit")
        if name not in one_shot and healthcheck_test(service) is None:
            problems.append(f"{name}: no healthcheck")
        for dep, condition in deps_of(service).items():
            if condition == "service_healthy" and healthcheck_test(services.get(dep) or {}) is None:
                problems.append(f"{name} waits for {dep} to be healthy, which has no healthcheck")
    return Outcome("all-services", title, problems)


def check_published(services, ports):
    """Only the front door (order-service), the read side's GET /stats
    (analytics-service), GET /shipments/{orderId} (shipping-service), the
    live web console (eventshop-console), each on its port from the code,
    and Mailpit's web UI are published, each on 127.0.0.1 only and on the same port as inside.

    Nothing else of the shop (PostgreSQL, Kafka, the other daemons'
    /metrics) is meant to be reachable from outside the Compose network, and
    nothing at all from other machines.
    """
    want = {d: {(LOOPBACK, str(ports.get(d)), str(ports.get(d)))} for d in PUBLISHED_DAEMONS}
    want["mailpit"] = {(LOOPBACK, str(MAILPIT_UI_PORT), str(MAILPIT_UI_PORT))}
    shown = ", ".join(f"{ip}:{host} ({name})" for name, entries in want.items()
                      for ip, host, _ in sorted(entries))
    problems = []
    for name in sorted(set(services) | set(want)):
        got = published_ports(services.get(name) or {})
        have = {(ip, host, inside) for _, ip, host, inside in got}
        for entry, ip, host, inside in got:
            if (ip, host, inside) not in want.get(name, set()):
                problems.append(f"{name}: {entry!r} is not one of the ports published by design")
        problems += [f"{name}: {ip}:{host}:{inside} not published"
                     for ip, host, inside in sorted(want.get(name, set()) - have)]
    return Outcome("published", f"published: only {shown}", problems)
