"""Checks of the Dockerfile against CI: the image is built the way CI builds
and tests the code, and carries what the programs load at run time."""

import os
import re
import shlex
import subprocess
from dataclasses import dataclass

from .project import DataError, command_words, logical_lines
from .report import Outcome, skipped

BUILD_STAGE = 0
FAULT_POINTS_OFF = "-DES_FAULT_POINTS=OFF"

# The runtime package of each library the build links (a -dev package of
# scripts/install-deps). A -dev package missing here fails the runtime
# packages check until its runtime library is added to the Dockerfile and
# here. Test-only ones need nothing at run time.
DEV_TO_RUNTIME = {
    "librdkafka-dev": "librdkafka1",
    "libjansson-dev": "libjansson4",
    "libmicrohttpd-dev": "libmicrohttpd12",
    "libpq-dev": "libpq5",
    "uuid-dev": "libuuid1",
    "libcurl4-openssl-dev": "libcurl4",
    "libjwt-dev": "libjwt0",
}
TEST_ONLY_DEV = {"libclang-rt-dev"}
HEALTHCHECK_PACKAGES = ("curl", "ca-certificates")
# Libraries of the base image itself (libc, libm, ...): always there.
BASE_PACKAGES = {"libc6"}


@dataclass
class Instruction:
    stage: int   # 0 for the first FROM's stage, 1 for the next, ...
    op: str      # FROM, RUN, COPY, ... (upper case)
    args: str


class Dockerfile:
    """A Dockerfile as its instructions, continuation lines joined."""

    def __init__(self, text):
        self.instructions = []
        stage = -1
        for line in logical_lines(text):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            op, _, args = line.partition(" ")
            op = op.upper()
            if op == "FROM":
                stage += 1
            self.instructions.append(Instruction(stage, op, args.strip()))
        self.runtime_stage = stage

    def base_images(self):
        return [i.args.split()[0] for i in self.instructions if i.op == "FROM"]

    def of_stage(self, stage, op=None):
        return [i for i in self.instructions if i.stage == stage and (op is None or i.op == op)]

    def stage_text(self, stage):
        return "\n".join(f"{i.op} {i.args}" for i in self.of_stage(stage))

    def run_commands(self, stage):
        """Every `&&`- or `;`-separated command of the stage's RUN instructions."""
        return [command.strip() for i in self.of_stage(stage, "RUN")
                for command in re.split(r"&&|;", i.args) if command.strip()]

    def installed_packages(self, stage):
        """The packages the stage's apt-get/apt install commands name."""
        packages = set()
        for command in self.run_commands(stage):
            words = shlex.split(command)
            if "install" in words and any(w in ("apt-get", "apt") for w in words):
                packages.update(w for w in words[words.index("install") + 1:]
                                if not w.startswith("-"))
        return packages


def check_ci(project):
    """.ci/run still runs scripts/install-deps, then plain scripts/test (the
    default build): the steps the Dockerfile's build stage repeats. If CI
    built otherwise, the image would no longer be built as CI tests."""
    commands = project.ci_commands()
    problems = []
    if "scripts/install-deps" not in commands:
        problems.append(".ci/run no longer runs scripts/install-deps")
    if not any(re.fullmatch(r"(\w+=\S+\s+)*scripts/test", c) for c in commands):
        problems.append(".ci/run no longer runs scripts/test (plain, for the default build)")
    return Outcome("ci", ".ci/run: runs scripts/install-deps, then scripts/test", problems)


def check_stages(dockerfile):
    """A build stage and a runtime stage, both on Debian bookworm: the release
    CI and the tests use, so the image's libraries are those tested."""
    images = dockerfile.base_images()
    problems = []
    if len(images) < 2:
        problems.append(f"{len(images)} stage(s): want a build stage and a runtime stage")
    elif not (images[0].startswith("debian:bookworm") and images[-1].startswith("debian:bookworm")):
        problems.append(f"FROM {images}: want Debian bookworm (the release CI and the tests use)")
    return Outcome("stages", f"Dockerfile: multi-stage on Debian bookworm ({' -> '.join(images)})",
                   problems)


def check_build_packages(dockerfile):
    """The build stage gets its packages only by running scripts/install-deps
    as CI does (copied to the image, run without options): one package
    list for CI and image, which cannot drift apart."""
    commands = dockerfile.run_commands(BUILD_STAGE)
    script = _install_deps_in_image(dockerfile)
    problems = []
    if not script:
        problems.append("the build stage does not COPY scripts/install-deps")
    elif not any(shlex.split(c) == [script] for c in commands):
        problems.append(f"the build stage does not RUN {script} (as CI does, without options)")
    installs = [c for c in commands if re.search(r"\bapt(-get)?\s+install\b", c)]
    if installs:
        problems.append("the build stage installs packages besides install-deps: "
                        + "; ".join(installs))
    return Outcome("build-packages",
                   "Dockerfile build stage: packages only from scripts/install-deps, CI's list",
                   problems)


def _install_deps_in_image(dockerfile):
    """Where the build stage copies scripts/install-deps to, or None."""
    for copy in dockerfile.of_stage(BUILD_STAGE, "COPY"):
        args = [a for a in copy.args.split() if not a.startswith("--")]
        if len(args) == 2 and args[0] == "scripts/install-deps":
            return args[1] + ("install-deps" if args[1].endswith("/") else "")
    return None


def split_configure(words):
    """(-S dir, -B dir, the other words) of a `cmake -S` command's words."""
    dirs = {}
    rest = []
    i = 1
    while i < len(words):
        if words[i] in ("-S", "-B") and i + 1 < len(words):
            dirs[words[i]] = words[i + 1]
            i += 2
        else:
            rest.append(words[i])
            i += 1
    return dirs.get("-S"), dirs.get("-B"), rest


def _build_stage_cmake(dockerfile, prefix):
    return [command_words(c) for c in dockerfile.run_commands(BUILD_STAGE) if c.startswith(prefix)]


def check_configure(dockerfile, project):
    """The build stage configures with exactly scripts/build's options, plus
    -DES_FAULT_POINTS=OFF: the image is what users deploy, so it must not
    carry the crash tests' fault points; everything else is the build the
    tests passed on."""
    try:
        configure, _ = project.build_commands()
    except DataError as e:
        return Outcome("configure", "Dockerfile configure = scripts/build's", [str(e)])
    _, _, want = split_configure(configure)
    title = (f"Dockerfile configure = scripts/build's: cmake -S <src> -B <build> {' '.join(want)} "
             f"{FAULT_POINTS_OFF}")
    found = _build_stage_cmake(dockerfile, "cmake -S")
    if len(found) != 1:
        return Outcome("configure", title,
                       [f"{len(found)} `cmake -S` commands in the build stage, want 1"])
    _, _, options = split_configure(found[0])
    problems = []
    if FAULT_POINTS_OFF not in options:
        problems.append(f"configure without {FAULT_POINTS_OFF}: the image would ship "
                        "the crash tests' fault points")
    options = [o for o in options if o != FAULT_POINTS_OFF]
    if options != want:
        problems.append(f"configure options {options}, scripts/build has {want}")
    return Outcome("configure", title, problems)


def check_build(dockerfile, project):
    """The build stage builds the directory it configured, with scripts/build's
    `cmake --build` options."""
    try:
        _, build = project.build_commands()
    except DataError as e:
        return Outcome("build", "Dockerfile build = scripts/build's", [str(e)])
    want = build[3:]
    title = f"Dockerfile build = scripts/build's: cmake --build <build> {' '.join(want)}"
    found = _build_stage_cmake(dockerfile, "cmake --build")
    if len(found) != 1:
        return Outcome("build", title,
                       [f"{len(found)} `cmake --build` commands in the build stage, want 1"])
    problems = []
    configured = _build_stage_cmake(dockerfile, "cmake -S")
    if configured:
        build_dir = split_configure(configured[0])[1]
        if found[0][2:3] != [build_dir]:
            problems.append(f"builds {found[0][2:3]}, configured {build_dir}")
    if found[0][3:] != want:
        problems.append(f"build options {found[0][3:]}, scripts/build has {want}")
    return Outcome("build", title, problems)


def check_runtime_packages(dockerfile, project):
    """The runtime stage installs the runtime library of every library the
    build links (each -dev package of scripts/install-deps), and curl for
    the healthchecks. A new -dev package fails this check until its runtime
    package is added, so the image cannot lack a library the programs load.
    """
    installed = dockerfile.installed_packages(dockerfile.runtime_stage)
    title = ("runtime stage installs the runtime library of each -dev package of install-deps "
             f"({', '.join(sorted(installed))})")
    try:
        dev_packages = project.dev_packages()
    except DataError as e:
        return Outcome("runtime-packages", title, [str(e)])
    problems = []
    for dev in sorted(set(dev_packages) - TEST_ONLY_DEV):
        runtime = DEV_TO_RUNTIME.get(dev)
        if runtime is None:
            problems.append(f"install-deps has {dev}, unknown here: add its runtime library to "
                            "the Dockerfile's runtime stage and to "
                            "scripts/check_compose/dockerfile.py")
        elif runtime not in installed:
            problems.append(f"{dev} is linked, but the runtime stage does not install {runtime}")
    problems += [f"the runtime stage does not install {p} (healthchecks)"
                 for p in HEALTHCHECK_PACKAGES if p not in installed]
    return Outcome("runtime-packages", title, problems)


def check_runtime_stage(dockerfile, daemons):
    """The runtime stage runs as a non-root user, the image ships every daemon
    of services/ and shopctl, and deploy/ is in /app/deploy, where the
    topics job reads topics.txt."""
    stage = dockerfile.runtime_stage
    users = [i.args for i in dockerfile.of_stage(stage, "USER")]
    user = users[-1] if users else None
    problems = []
    if user is None or user.split(":")[0] in ("root", "0"):
        problems.append(f"USER {user or '(none)'}: want a non-root user")
    build_text = dockerfile.stage_text(BUILD_STAGE)
    problems += [f"{program}: not among the programs the image ships"
                 for program in daemons + ["shopctl"] if program not in build_text]
    copy_deploy = r"^COPY\s+(--\S+\s+)*deploy/?\s+/app/deploy/?$"
    if not re.search(copy_deploy, dockerfile.stage_text(stage), re.M):
        problems.append("deploy/ is not copied to /app/deploy (topics.txt for the topics job)")
    return Outcome("runtime-stage",
                   f"runtime stage: non-root USER {user or '?'}, the {len(daemons)} daemons "
                   "and shopctl, deploy/ in /app/deploy", problems)


def programs_of(build_dir, daemons):
    paths = [os.path.join(build_dir, "services", d, d) for d in daemons]
    return paths + [os.path.join(build_dir, "tools", "shopctl", "shopctl")]


def check_runtime_libraries(dockerfile, build_dir, daemons):
    """When a build has the programs, every shared library they load
    (readelf's NEEDED entries) belongs to a package the runtime stage
    installs, or to libc: what the programs really need, not only what
    install-deps says they link."""
    programs = programs_of(build_dir, daemons) if build_dir else []
    if not programs or not all(os.path.isfile(p) for p in programs):
        return skipped("runtime-libraries",
                       f"libraries the programs load: no complete build in {build_dir} (BUILD_DIR)")
    try:
        needed = sorted({lib for p in programs for lib in needed_libraries(p)})
        owners = library_owners(needed)
    except (OSError, subprocess.CalledProcessError) as e:
        return Outcome("runtime-libraries", "libraries the programs load", [f"readelf/dpkg: {e}"])
    installed = dockerfile.installed_packages(dockerfile.runtime_stage)
    problems = []
    for lib in needed:
        packages = owners.get(lib, set())
        if not packages & (installed | BASE_PACKAGES):
            problems.append(f"{lib} (from {', '.join(sorted(packages)) or 'no package'}) "
                            "is not installed by the runtime stage")
    return Outcome("runtime-libraries",
                   f"libraries the programs of {_shown(build_dir)} load ({', '.join(needed)}) "
                   "come from the runtime stage's packages", problems)


def needed_libraries(program):
    """The NEEDED entries of an ELF program's dynamic section (readelf -d)."""
    result = subprocess.run(["readelf", "-d", program], capture_output=True, text=True, check=True)
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^]]+)\]", result.stdout)


def library_owners(libraries):
    """{library file name: the packages that ship it} from one `dpkg -S`."""
    if not libraries:
        return {}
    result = subprocess.run(["dpkg", "-S"] + [f"*/{lib}" for lib in libraries],
                            capture_output=True, text=True)
    owners = {}
    for line in result.stdout.splitlines():
        if line.startswith("diversion ") or ": " not in line:
            continue
        packages, path = line.rsplit(": ", 1)
        names = {p.strip().split(":")[0] for p in packages.split(",")}
        owners.setdefault(os.path.basename(path), set()).update(names)
    return owners


def _shown(build_dir):
    """The build directory relative to the current one when inside it."""
    absolute = os.path.abspath(build_dir)
    inside = absolute.startswith(os.getcwd() + os.sep)
    return os.path.relpath(absolute) if inside else build_dir
