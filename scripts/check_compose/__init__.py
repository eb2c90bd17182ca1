"""Checks docker-compose.yml and the Dockerfile without a Docker engine.

usage: scripts/check-compose [--self-test [-v]]

  1. docker-compose.yml is a valid Compose file: `docker-compose config -q`
     of Debian's docker-compose package (1.29: the compose-spec JSON Schema
     it ships, through python3-jsonschema, plus its own checks such as
     depends_on naming a service that exists). It reads the file only, it
     never contacts an engine. `docker compose config -q` (Compose v2) runs
     too when that plugin is installed.
  2. the file runs the shop as designed, checked against the project's own
     data: every daemon directory under services/ has a service of that
     name, from the one image, on the port its main.c gives it, with its
     environment, a /readyz healthcheck and a memory limit, started after
     Kafka and PostgreSQL are healthy and the `topics` job succeeded; that
     job creates deploy/topics.txt, which holds every topic the daemons use
     (schemas/asyncapi.yaml's, dlq.<daemon>, TOPIC_* overrides); Kafka is
     a 4.x KRaft single node; only order-service's, analytics-service's,
     shipping-service's and eventshop-console's ports and Mailpit's 8025 are published, on
     127.0.0.1.
  3. the Dockerfile builds the way CI does: .ci/run runs
     scripts/install-deps and scripts/test (which builds with
     scripts/build); the Dockerfile's build stage gets its packages only by
     running scripts/install-deps, and its cmake configure and build
     commands carry the same options as scripts/build's; the runtime stage
     installs the runtime library of every library the build links and
     runs as a non-root user. When a build (BUILD_DIR, default ./build) has
     the programs, the libraries they load (readelf) must all come from the
     runtime stage's packages.

Prints one OK, FAIL or SKIP line per check; exit status 0 when nothing
failed, 1 otherwise. --self-test instead runs the checks on mutated copies
of the files (selftest.py) and shows each check can fail; it needs neither
network nor container engine.

Needs the Debian packages docker-compose (install it with
--no-install-recommends: its recommended docker.io is an engine),
python3-yaml and python3-jsonschema; PYTHON overrides the interpreter
scripts/check-compose runs this with (default /usr/bin/python3, Debian's,
where those modules are).

Modules: project.py reads the project's data, compose.py and dockerfile.py
hold the checks (each function's docstring says what it guarantees and
why), checks.py runs them in order, report.py prints their outcomes.
"""
