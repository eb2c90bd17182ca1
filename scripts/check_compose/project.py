"""The project's own data, which the compose file and the Dockerfile must match.

Everything here is read from the files that define it for the code and for
CI, never from documentation: the daemons are the directories of services/
(as services/CMakeLists.txt builds them), each daemon's port is the default
its main.c gives the common library, the topics are deploy/topics.txt (what
the compose file's `topics` job creates) and schemas/asyncapi.yaml (the
topics the daemons use by default), the database roles are
deploy/postgres/roles.sql's list (what the `db-roles` job creates), and the build is scripts/build's and
scripts/install-deps' own commands.
"""

import re
import shlex
from pathlib import Path

import yaml

# Every file or directory the checks read, relative to the repository root
# (the self-test copies exactly these into a scratch directory).
INPUTS = (
    "docker-compose.yml",
    "Dockerfile",
    ".dockerignore",
    ".ci/run",
    "scripts/install-deps",
    "scripts/build",
    "deploy",
    "services",
    "schemas/asyncapi.yaml",
    "tools/console/console.h",
)
REQUIRED_FILES = ("docker-compose.yml", "Dockerfile", ".dockerignore",
                  "scripts/install-deps", "scripts/build", ".ci/run")
TOPICS_FILE = "deploy/topics.txt"
ROLES_FILE = "deploy/postgres/roles.sql"
# One row of roles.sql's list: ('order_service', :'pw_order_service')
ROLE_ROW = re.compile(r"^\s*\('([a-z_]+)', :'pw_\1'\)[,;]\s*$", re.M)
CONTRACT_FILE = "schemas/asyncapi.yaml"

# A daemon's default HTTP_PORT is the http_port of the struct es_service_spec
# its main.c hands to es_service_init (es/service.h), set from a macro:
#     .http_port = ORDER_HTTP_PORT,
# and the macro is a plain `#define ORDER_HTTP_PORT 8080` in one of the
# daemon's .c or .h files. The C source is the only place the port is
# defined, so these two narrow patterns read it there; anything else (an
# expression, two definitions) is reported rather than guessed at.
# The console (tools/console, no daemon of the shop) has its port in
# console.h the same way: `#define CONSOLE_HTTP_PORT 8085`.
CONSOLE = "eventshop-console"
CONSOLE_HEADER = "tools/console/console.h"
SPEC_PORT_FIELD = re.compile(r"\.http_port\s*=\s*([A-Z][A-Z0-9_]*|[0-9]+)\s*,")
PORT_DEFINE = r"^#define[ \t]+{macro}[ \t]+([0-9]+)[ \t]*$"

# deploy/topics.txt, as shopctl create-topics reads it (tools/shopctl/topics.c).
MAX_PARTITIONS = 1000


def load_yaml(text):
    """yaml.safe_load, with libyaml's parser when python3-yaml has it (faster)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


class DataError(Exception):
    """The project's data cannot be read as the checks expect."""


class Project:
    """A checkout of eventshop (or the self-test's copy of one)."""

    def __init__(self, root):
        self.root = Path(root)

    def path(self, relative):
        return self.root / relative

    def read(self, relative):
        try:
            return self.path(relative).read_text(encoding="utf-8")
        except OSError as e:
            raise DataError(f"{relative}: {e.strerror}") from e

    def missing_files(self):
        return [f for f in REQUIRED_FILES if not self.path(f).is_file()]

    def daemons(self):
        """The daemon directories of services/: those with a CMakeLists.txt."""
        services = self.path("services")
        return sorted(d.name for d in services.iterdir() if (d / "CMakeLists.txt").is_file())

    def http_port(self, daemon):
        """The daemon's default HTTP_PORT, read from its C source."""
        main_c = f"services/{daemon}/main.c"
        fields = SPEC_PORT_FIELD.findall(self.read(main_c))
        if len(fields) != 1:
            raise DataError(f"{daemon}: {main_c} sets .http_port {len(fields)} times, want once")
        if fields[0].isdigit():
            return int(fields[0])
        return self._port_macro_value(daemon, fields[0])

    def console_port(self):
        """eventshop-console's default port, read from its header."""
        define = re.compile(PORT_DEFINE.format(macro="CONSOLE_HTTP_PORT"), re.M)
        values = define.findall(self.read(CONSOLE_HEADER))
        if len(values) != 1:
            raise DataError(f"{CONSOLE_HEADER}: {len(values)} `#define CONSOLE_HTTP_PORT <number>`, "
                            f"want one")
        return int(values[0])

    def _port_macro_value(self, daemon, macro):
        define = re.compile(PORT_DEFINE.format(macro=re.escape(macro)), re.M)
        sources = sorted(self.path(f"services/{daemon}").glob("*.[ch]"))
        values = [int(v) for source in sources
                  for v in define.findall(source.read_text(encoding="utf-8"))]
        if len(values) != 1:
            raise DataError(f"{daemon}: {len(values)} `#define {macro} <number>` in "
                            f"services/{daemon}/*.[ch], want one")
        return values[0]

    def topics(self):
        """deploy/topics.txt as {topic: partitions}, read as shopctl create-topics does:
        one "name partitions [replicas min.insync]" per line, `#` starts a comment,
        blank lines skipped."""
        topics = {}
        for lineno, line in enumerate(self.read(TOPICS_FILE).splitlines(), 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            where = f"{TOPICS_FILE}:{lineno}"
            if len(fields) not in (2, 4) or not all(f.isdigit() for f in fields[1:]):
                raise DataError(f'{where}: want "name partitions [replicas min.insync]", '
                                f'got {line.strip()!r}')
            if not 1 <= int(fields[1]) <= MAX_PARTITIONS:
                raise DataError(f"{where}: {fields[1]} partitions, want 1 to {MAX_PARTITIONS}")
            topics[fields[0]] = int(fields[1])
        return topics

    def service_roles(self):
        """The database roles of deploy/postgres/roles.sql's list, in order."""
        roles = ROLE_ROW.findall(self.read(ROLES_FILE))
        if not roles:
            raise DataError(f"{ROLES_FILE}: no ('role', :'pw_role') rows")
        return roles

    def contract_topics(self, daemons):
        """The topics the daemons use by default: the address of each channel of
        schemas/asyncapi.yaml, `dlq.{service}` once for each daemon."""
        try:
            channels = load_yaml(self.read(CONTRACT_FILE))["channels"]
        except (yaml.YAMLError, TypeError, KeyError) as e:
            raise DataError(f"{CONTRACT_FILE}: no channels ({e})") from e
        topics = set()
        for channel in channels.values():
            address = str(channel.get("address", ""))
            if "{service}" in address:
                topics.update(address.replace("{service}", d) for d in daemons)
            elif "{" in address:
                raise DataError(f"{CONTRACT_FILE}: address {address!r}: unknown parameter")
            else:
                topics.add(address)
        return topics

    def ci_commands(self):
        """The commands of .ci/run, one per logical line."""
        return [line.strip() for line in logical_lines(self.read(".ci/run"))]

    def build_commands(self):
        """scripts/build's cmake configure and build commands, as word lists
        without the CMAKE_ARGS expansion and the --target words."""
        configure = build = None
        for line in logical_lines(self.read("scripts/build")):
            command = line.strip()
            if command.startswith("cmake -S") and configure is None:
                configure = [w for w in command_words(command) if "CMAKE_ARGS" not in w]
            elif command.startswith("cmake --build") and build is None:
                build = [w for w in command_words(command) if "targets" not in w]
        if not configure or not build:
            raise DataError("scripts/build: cannot find its `cmake -S` and `cmake --build` "
                            "commands")
        return configure, build

    def dev_packages(self):
        """The -dev packages of scripts/install-deps' REQUIRED list: the libraries
        the build can link."""
        text = self.read("scripts/install-deps")
        required = re.search(r"^REQUIRED=\(\n(.*?)^\)", text, re.M | re.S)
        if not required:
            raise DataError("scripts/install-deps: no REQUIRED=( ... ) list")
        names = re.findall(r"^\s*'?([a-z0-9][a-z0-9.+-]*-dev)\b", required.group(1), re.M)
        if not names:
            raise DataError("scripts/install-deps: no -dev package in REQUIRED")
        return sorted(set(names))


def logical_lines(text):
    """Shell or Dockerfile text with backslash-newline continuations joined."""
    return re.sub(r"\\\n", " ", text).splitlines()


def command_words(command):
    """A shell command's words, up to the first redirection or list operator."""
    words = []
    for word in shlex.split(command, comments=True):
        if word in ("||", "&&", "|", ";") or word.startswith((">", "2>", "<")):
            break
        words.append(word)
    return words
