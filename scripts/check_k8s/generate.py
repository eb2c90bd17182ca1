"""The manifests of deploy/k8s/base/generated/ and the local overlay's Secrets,
made from the project's data: deploy/k8s/services.txt (who reads and writes
what, and the memory each daemon gets), deploy/topics.txt (the topics and
their partitions) and the code (each daemon's port, read as check-compose
reads it). `scripts/check-k8s --write` writes them; the `generated` check
fails when a committed file differs from what this module makes.

Everything that repeats once per daemon or per topic is made here, so that
the Deployments, the ACLs and the autoscalers cannot drift apart; what is
written once (the Kafka cluster, the PostgreSQL cluster) is in
deploy/k8s/base/ by hand.
"""

import yaml

from check_compose.project import CONSOLE, DataError

SERVICES_FILE = "deploy/k8s/services.txt"
GENERATED = {
    "topics": "deploy/k8s/base/generated/topics.yaml",
    "users": "deploy/k8s/base/generated/users.yaml",
    "daemons": "deploy/k8s/base/generated/daemons.yaml",
    "autoscaling": "deploy/k8s/base/generated/autoscaling.yaml",
    "postgres": "deploy/k8s/base/generated/postgres.yaml",
    "secrets": "deploy/k8s/overlays/local/secrets.yaml",
}

# Names the hand-written manifests give (deploy/k8s/base/kafka.yaml and
# kustomization.yaml) and Strimzi derives from them.
NAMESPACE = "eventshop"
KAFKA_CLUSTER = "eventshop"
KAFKA_BOOTSTRAP = f"{KAFKA_CLUSTER}-kafka-bootstrap:9093"
# KEDA's operator connects from its own namespace: the Service's full name.
KAFKA_BOOTSTRAP_FQDN = f"{KAFKA_CLUSTER}-kafka-bootstrap.{NAMESPACE}.svc:9093"
KAFKA_CA_SECRET = f"{KAFKA_CLUSTER}-cluster-ca-cert"
# Where a pod mounts the cluster CA (to verify the brokers) and its
# KafkaUser's Secret, which Strimzi's User Operator makes under the user's
# name: user.crt and user.key, its certificate (CN=<user>) and key.
KAFKA_CA_DIR = "/etc/eventshop/kafka-ca"
KAFKA_USER_DIR = "/etc/eventshop/kafka-user"
# The user's key readable by the image's group only (fsGroup), not by all.
USER_KEY_MODE = 0o440
DB_HOST = "eventshop-db-rw"
DB_NAME = "eventshop"
JWT_SECRET = "eventshop-jwt"
JWT_KEY = "jwt.key"
KEDA_USER = "keda"
KEDA_AUTH = "eventshop-keda-kafka"
IMAGE = "eventshop"
UID = 10001  # the Dockerfile's eventshop user

# A topic on the cluster: three copies, and a write is acknowledged once two
# have it (acks=all, the daemons' idempotent producer).
TOPIC_REPLICAS = 3
TOPIC_MIN_INSYNC = 2

# The autoscaler adds an instance per this many events of lag per topic.
LAG_THRESHOLD = 100
MIN_REPLICAS = 2  # one to work and one ready: also what the PDB keeps

# eventshop-console: not in services.txt (no database, no group of its own);
# memory is not in docs/benchmarks.md: its ring of recent events
# (CONSOLE_RING_BYTES, 8 MiB) over a daemon's idle RSS (about 12 MiB).
CONSOLE_MEMORY = (32, 96)


class Daemon:
    def __init__(self, name, consumes, produces, memory):
        self.name = name
        self.consumes = consumes
        self.produces = produces
        self.memory = memory

    @property
    def role(self):
        """Its PostgreSQL role and schema: the name with underscores."""
        return self.name.replace("-", "_")


def read_services(project):
    """deploy/k8s/services.txt as a list of Daemon, checked against topics.txt."""
    topics = project.topics()
    daemons = []
    for lineno, line in enumerate(project.read(SERVICES_FILE).splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        where = f"{SERVICES_FILE}:{lineno}"
        if len(fields) != 5 or not fields[3].isdigit() or not fields[4].isdigit():
            raise DataError(f'{where}: want "daemon consumes produces request limit", '
                            f"got {line.strip()!r}")
        consumes = fields[1].split(",")
        produces = None if fields[2] == "-" else fields[2]
        for topic in consumes + [produces or consumes[0], f"dlq.{fields[0]}"]:
            if topic not in topics:
                raise DataError(f"{where}: topic {topic} is not in deploy/topics.txt")
        request, limit = int(fields[3]), int(fields[4])
        if not 0 < request <= limit:
            raise DataError(f"{where}: memory request {request} MiB over its limit {limit}")
        daemons.append(Daemon(fields[0], consumes, produces, (request, limit)))
    if not daemons:
        raise DataError(f"{SERVICES_FILE}: no daemon")
    return daemons


def labels(name):
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "eventshop"}


def acl(kind, name, operations, pattern="literal"):
    return {"resource": {"type": kind, "name": name, "patternType": pattern},
            "operations": operations}


def kafka_user(name, acls):
    """A mutual-TLS principal, User:CN=<name>: the clients CA signs its
    certificate, not a SCRAM password (deploy/k8s/README.md says why)."""
    return {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaUser",
        "metadata": {"name": name, "labels": {"strimzi.io/cluster": KAFKA_CLUSTER}},
        "spec": {
            "authentication": {"type": "tls"},
            "authorization": {"type": "simple", "acls": acls},
        },
    }


def topic_objects(topics):
    return [{
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": {"name": name, "labels": {"strimzi.io/cluster": KAFKA_CLUSTER}},
        "spec": {"partitions": partitions, "replicas": TOPIC_REPLICAS,
                 "config": {"min.insync.replicas": TOPIC_MIN_INSYNC}},
    } for name, partitions in topics.items()]


def user_objects(daemons, topics):
    objects = []
    for d in daemons:
        acls = [acl("topic", t, ["Describe", "Read"]) for t in d.consumes]
        acls.append(acl("group", d.name, ["Read"]))
        for t in ([d.produces] if d.produces else []) + [f"dlq.{d.name}"]:
            acls.append(acl("topic", t, ["Describe", "Write"]))
        objects.append(kafka_user(d.name, acls))
    # The console reads every topic with a throwaway group of its own
    # (es/reader.h: "eventshop-console-<uuid>", nothing committed) and
    # reads each daemon's committed offsets for the lag panel.
    console = [acl("topic", t, ["Describe", "Read"]) for t in topics]
    console.append(acl("group", f"{CONSOLE}-", ["Read"], pattern="prefix"))
    console += [acl("group", d.name, ["Describe"]) for d in daemons]
    objects.append(kafka_user(CONSOLE, console))
    # KEDA's Kafka scaler: the consumed topics' end offsets and the groups'
    # committed offsets, nothing else.
    consumed = sorted({t for d in daemons for t in d.consumes})
    keda = [acl("topic", t, ["Describe"]) for t in consumed]
    keda += [acl("group", d.name, ["Describe"]) for d in daemons]
    objects.append(kafka_user(KEDA_USER, keda))
    return objects


def env(name, value):
    return {"name": name, "value": str(value)}


def secret_env(name, secret, key):
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def kafka_env():
    """librdkafka's settings through the KAFKA_* pass-through (es/config.h):
    TLS both ways, with the files of kafka_volumes(). librdkafka reads them
    when the client is made, at the daemon's start."""
    return [
        env("KAFKA_BOOTSTRAP_SERVERS", KAFKA_BOOTSTRAP),
        env("KAFKA_SECURITY_PROTOCOL", "ssl"),
        env("KAFKA_SSL_CA_LOCATION", f"{KAFKA_CA_DIR}/ca.crt"),
        env("KAFKA_SSL_CERTIFICATE_LOCATION", f"{KAFKA_USER_DIR}/user.crt"),
        env("KAFKA_SSL_KEY_LOCATION", f"{KAFKA_USER_DIR}/user.key"),
    ]


def kafka_volumes(user):
    """The cluster CA and the KafkaUser's certificate and key, as volumes and
    their read-only mounts. Whole-directory mounts, no subPath: the kubelet
    replaces the files when Strimzi renews the Secrets."""
    volumes = [
        {"name": "kafka-ca", "secret": {"secretName": KAFKA_CA_SECRET,
                                        "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"name": "kafka-user", "secret": {"secretName": user, "defaultMode": USER_KEY_MODE,
                                          "items": [{"key": "user.crt", "path": "user.crt"},
                                                    {"key": "user.key", "path": "user.key"}]}},
    ]
    mounts = [{"name": "kafka-ca", "mountPath": KAFKA_CA_DIR, "readOnly": True},
              {"name": "kafka-user", "mountPath": KAFKA_USER_DIR, "readOnly": True}]
    return mounts, volumes


def probe(path, period, failures):
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period,
            "timeoutSeconds": 2, "failureThreshold": failures}


def deployment(name, port, memory, environment, mounts=(), volumes=()):
    """The Deployment of a daemon or the console; its KafkaUser has its name."""
    request, limit = memory
    kafka_mounts, kafka_vols = kafka_volumes(name)
    container = {
        "name": name,
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": [name],
        "ports": [{"name": "http", "containerPort": port}],
        "env": [env("HTTP_BIND", "0.0.0.0"), *environment,
                env("AUTH_JWT_KEY_FILE", f"/etc/eventshop/jwt/{JWT_KEY}")],
        # Connecting to the database may take up to DATABASE_CONNECT_TIMEOUT_MS
        # (60 s) at start: the startup probe allows that before liveness counts.
        "startupProbe": probe("/livez", 2, 45),
        "livenessProbe": probe("/livez", 10, 3),
        "readinessProbe": probe("/readyz", 5, 2),
        "resources": {"requests": {"cpu": "50m", "memory": f"{request}Mi"},
                      "limits": {"memory": f"{limit}Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [
            *kafka_mounts,
            {"name": "jwt", "mountPath": "/etc/eventshop/jwt", "readOnly": True},
            *mounts,
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels(name)},
        "spec": {
            # No replicas: the ScaledObject (or the console's own count
            # below) owns it, and an apply must not reset it.
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels(name)},
                "spec": {
                    "automountServiceAccountToken": False,
                    # Service links would put variables such as KAFKA_PORT in
                    # the environment for a Service named kafka, and every
                    # KAFKA_* variable is a librdkafka setting (es/config.h).
                    "enableServiceLinks": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": UID,
                                        "runAsGroup": UID, "fsGroup": UID,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    # Instances on different nodes where there are several,
                    # so that one node lost is not every instance lost.
                    "topologySpreadConstraints": [{
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": name}},
                    }],
                    "containers": [container],
                    "volumes": [
                        *kafka_vols,
                        {"name": "jwt", "secret": {"secretName": JWT_SECRET}},
                        *volumes,
                    ],
                },
            },
        },
    }


def service(name, port):
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels(name)},
        "spec": {"selector": {"app.kubernetes.io/name": name},
                 "ports": [{"name": "http", "port": port, "targetPort": "http"}]},
    }


def disruption_budget(name):
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "labels": labels(name)},
        "spec": {"minAvailable": 1,
                 "selector": {"matchLabels": {"app.kubernetes.io/name": name}}},
    }


def daemon_objects(project, daemons):
    objects = []
    ports = {d.name: project.http_port(d.name) for d in daemons}
    for d in daemons:
        environment = [
            env("HTTP_PORT", ports[d.name]),
            *kafka_env(),
            # The password goes to libpq through PGPASSWORD, never in the URL.
            env("DATABASE_URL",
                f"postgresql://{d.role}@{DB_HOST}:5432/{DB_NAME}?sslmode=require"),
            secret_env("PGPASSWORD", f"{d.name}-db", "password"),
            # A stable name per instance (static group membership, where
            # the daemon uses it): the pod's own name.
            {"name": "INSTANCE_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ]
        mounts, volumes = [], []
        if d.name == "email-service":
            # The Maildir (MAILDIR's default, ./var/maildir under /app): the
            # one place a daemon writes to disk. Set SMTP_URL to send instead.
            mounts = [{"name": "maildir", "mountPath": "/app/var/maildir"}]
            volumes = [{"name": "maildir", "emptyDir": {"sizeLimit": "1Gi"}}]
        objects += [deployment(d.name, ports[d.name], d.memory, environment, mounts, volumes),
                    service(d.name, ports[d.name]), disruption_budget(d.name)]

    port = project.console_port()
    console = deployment(CONSOLE, port, CONSOLE_MEMORY, [
        env("CONSOLE_PORT", port),
        *kafka_env(),
        env("ORDER_SERVICE_URL", f"http://order-service:{ports['order-service']}"),
        env("CONSOLE_SERVICES", ",".join(f"{d.name}=http://{d.name}:{ports[d.name]}"
                                         for d in daemons)),
        env("CONSOLE_GROUPS", ",".join(d.name for d in daemons)),
    ])
    # Each instance reads every topic itself: two are two whole consoles.
    console["spec"]["replicas"] = MIN_REPLICAS
    objects += [console, service(CONSOLE, port), disruption_budget(CONSOLE)]
    return objects


def autoscaling_objects(daemons, topics):
    objects = [{
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": {"name": KEDA_AUTH, "labels": labels("keda")},
        # The triggers say `tls: enable` and no sasl: KEDA's Kafka scaler
        # then logs in with the keda KafkaUser's certificate and key (its
        # Secret, made by Strimzi) and verifies the brokers with the cluster CA.
        "spec": {"secretTargetRef": [
            {"parameter": "ca", "name": KAFKA_CA_SECRET, "key": "ca.crt"},
            {"parameter": "cert", "name": KEDA_USER, "key": "user.crt"},
            {"parameter": "key", "name": KEDA_USER, "key": "user.key"},
        ]},
    }]
    for d in daemons:
        # More instances than the largest topic has partitions would get
        # no partition at all: that is the cap.
        cap = max(topics[t] for t in d.consumes)
        objects.append({
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": d.name, "labels": labels(d.name)},
            "spec": {
                "scaleTargetRef": {"name": d.name},
                "minReplicaCount": min(MIN_REPLICAS, cap),
                "maxReplicaCount": cap,
                "pollingInterval": 15,
                "cooldownPeriod": 300,
                "triggers": [{
                    "type": "kafka",
                    "metadata": {
                        "bootstrapServers": KAFKA_BOOTSTRAP_FQDN,
                        "consumerGroup": d.name,
                        "topic": t,
                        "lagThreshold": str(LAG_THRESHOLD),
                        "offsetResetPolicy": "earliest",
                        "allowIdleConsumers": "false",
                        "tls": "enable",
                    },
                    "authenticationRef": {"name": KEDA_AUTH},
                } for t in d.consumes],
            },
        })
    return objects


def postgres_objects(daemons):
    """One PostgreSQL cluster, one database; a role per daemon, owning its
    schema, with no privilege on the others' (the daemon's
    `CREATE SCHEMA IF NOT EXISTS` finds its schema there)."""
    return [{
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": DB_HOST.removesuffix("-rw"), "labels": labels("postgres")},
        "spec": {
            # A primary and two standbys; the daemons reconnect to the -rw
            # Service after a failover (es/db.h retries).
            "instances": 3,
            "imageName": "ghcr.io/cloudnative-pg/postgresql:16",
            "primaryUpdateStrategy": "unsupervised",
            "storage": {"size": "5Gi"},
            # An instance holds up to HTTP_THREADS (4) pooled connections,
            # its consumer's and its relay's: 6; six services at six
            # instances each is 216, under the limit.
            # The keepalives end the session of a daemon whose node vanished
            # within about a minute, and with it the outbox relay lock it
            # held, so that another instance takes over (README.md).
            "postgresql": {"parameters": {"max_connections": "300",
                                          "shared_buffers": "128MB",
                                          "tcp_keepalives_idle": "30",
                                          "tcp_keepalives_interval": "10",
                                          "tcp_keepalives_count": "3"}},
            "resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                          "limits": {"memory": "512Mi"}},
            # What deploy/postgres/roles.sql does besides the roles and their
            # schemas (which CloudNativePG keeps: managed roles, the
            # Database's schemas): the database grants nothing to PUBLIC and
            # CONNECT to each role, and nobody creates objects in public.
            # Run once, when the cluster is made; the roles are created here
            # so that they can be granted, and the operator then gives each
            # its password.
            "bootstrap": {"initdb": {
                "database": DB_NAME,
                "owner": DB_NAME,
                "postInitApplicationSQL": [
                    *(f"CREATE ROLE {d.role} LOGIN" for d in daemons),
                    f"REVOKE ALL ON DATABASE {DB_NAME} FROM PUBLIC",
                    *(f"GRANT CONNECT ON DATABASE {DB_NAME} TO {d.role}" for d in daemons),
                    "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
                ],
            }},
            "managed": {"roles": [{
                "name": d.role,
                "ensure": "present",
                "login": True,
                "passwordSecret": {"name": f"{d.name}-db"},
            } for d in daemons]},
        },
    }, {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Database",
        "metadata": {"name": DB_NAME, "labels": labels("postgres")},
        "spec": {
            "cluster": {"name": DB_HOST.removesuffix("-rw")},
            "name": DB_NAME,
            "owner": DB_NAME,
            "databaseReclaimPolicy": "retain",
            "schemas": [{"name": d.role, "owner": d.role, "ensure": "present"}
                        for d in daemons],
        },
    }]


def local_secret_objects(daemons):
    """The local overlay's credentials: fixed, public, for a laptop cluster
    only (deploy/k8s/README.md says how to make real ones)."""
    objects = []
    for d in daemons:
        # CloudNativePG reads a managed role's password from a basic-auth
        # Secret whose username is the role.
        objects.append({"apiVersion": "v1", "kind": "Secret",
                        "metadata": {"name": f"{d.name}-db", "labels": labels(d.name)},
                        "type": "kubernetes.io/basic-auth",
                        "stringData": {"username": d.role,
                                       "password": f"local-only-{d.role}"}})
    # No Kafka credentials: Strimzi makes each KafkaUser's certificate.
    objects.append({"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": JWT_SECRET, "labels": labels("eventshop")},
                    "type": "Opaque",
                    "stringData": {JWT_KEY: "local-only-jwt-key-of-at-least-32-bytes"}})
    return objects


HEADER = ("# Generated by scripts/check-k8s --write from deploy/k8s/services.txt,\n"
          "# deploy/topics.txt and the daemons' ports in the code: do not edit;\n"
          "# change those, run it again and commit both (scripts/check_k8s/generate.py).\n")


def render(objects):
    return HEADER + "".join(
        "---\n" + yaml.safe_dump(o, sort_keys=False, default_flow_style=False, width=100)
        for o in objects)


def generate(project):
    """{relative path: text} of every generated file."""
    daemons = read_services(project)
    topics = project.topics()
    return {
        GENERATED["topics"]: render(topic_objects(topics)),
        GENERATED["users"]: render(user_objects(daemons, topics)),
        GENERATED["daemons"]: render(daemon_objects(project, daemons)),
        GENERATED["autoscaling"]: render(autoscaling_objects(daemons, topics)),
        GENERATED["postgres"]: render(postgres_objects(daemons)),
        GENERATED["secrets"]: render(local_secret_objects(daemons)),
    }
