"""Every check, in the order check-compose prints them."""

from . import compose, dockerfile
from .project import CONSOLE, DataError
from .report import Outcome


def run_checks(project, build_dir=None, compose_config=True):
    """Yields the Outcome of each check of the checkout `project`.

    build_dir: a build whose programs the runtime-libraries check reads
    (None: that check is skipped). compose_config=False leaves out the
    docker-compose/docker compose runs (the self-test's mutations do not
    need them).
    """
    missing = project.missing_files()
    if missing:
        yield Outcome("files", "the files to check are there", [f"{f}: missing" for f in missing])
        return
    if compose_config:
        yield compose.check_compose_v1(project.root)
        yield compose.check_compose_v2(project.root)
    daemons = project.daemons()
    ports_outcome, ports = check_daemon_ports(project, daemons)
    yield ports_outcome
    yield from compose_checks(project, daemons, ports)
    yield from dockerfile_checks(project, daemons, build_dir)


def check_daemon_ports(project, daemons):
    """Each daemon directory of services/ defines its default HTTP port in its
    code (see project.http_port): the port its compose service must use.
    Returns (the outcome, {daemon: port})."""
    ports, problems = {}, []
    for daemon in daemons:
        try:
            ports[daemon] = project.http_port(daemon)
        except DataError as e:
            problems.append(str(e))
    listed = ", ".join(f"{d} {p}" for d, p in ports.items())
    return Outcome("daemon-ports", f"the {len(daemons)} daemons of services/ and their ports "
                   f"in the code ({listed})", problems), ports


def compose_checks(project, daemons, ports):
    services, failure = compose.load_services(project.root)
    if failure:
        yield failure
        return
    yield compose.check_kafka(services)
    yield compose.check_postgres(services)
    yield compose.check_mailpit(services)
    yield compose.check_topics_job(services)
    yield check_topics(project, services, daemons)
    yield check_db_roles(project, services, daemons)
    image = compose.image_of_topics_job(services)
    for daemon in daemons:
        yield compose.check_daemon(services, daemon, ports.get(daemon), image)
    yield compose.check_all_services(services)
    try:
        published = {**ports, CONSOLE: project.console_port()}
    except DataError as e:
        yield Outcome("published", "published ports", [str(e)])
        return
    yield compose.check_published(services, published)


def check_topics(project, services, daemons):
    try:
        topic_file = project.topics()
        contract = project.contract_topics(daemons)
    except DataError as e:
        return Outcome("topics", "deploy/topics.txt: every topic the daemons use",
                       [str(e)])
    return compose.check_topics(services, daemons, topic_file, contract)


def check_db_roles(project, services, daemons):
    try:
        roles = project.service_roles()
    except DataError as e:
        return Outcome("db-roles", "db-roles: the roles of deploy/postgres/roles.sql", [str(e)])
    return compose.check_db_roles(services, daemons, roles)


def dockerfile_checks(project, daemons, build_dir):
    yield dockerfile.check_ci(project)
    df = dockerfile.Dockerfile(project.read("Dockerfile"))
    yield dockerfile.check_stages(df)
    yield dockerfile.check_build_packages(df)
    yield dockerfile.check_configure(df, project)
    yield dockerfile.check_build(df, project)
    yield dockerfile.check_runtime_packages(df, project)
    yield dockerfile.check_runtime_stage(df, daemons)
    yield dockerfile.check_runtime_libraries(df, build_dir, daemons)
