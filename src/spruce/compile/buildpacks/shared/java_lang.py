"""Rules of Heroku's Java (Maven) buildpack that Spruce's heroku/java follows (stdlib only).

* An app has a `pom.xml` (or a Polyglot Maven pom.* file) at its root.
* The JDK: `java.runtime.version` in `system.properties` (`17`, `1.8`, `21.0.2`, `zulu-17`),
  matched by major version among the JDKs installed under /usr/lib/jvm (SPRUCE_JVM_DIR), such
  as Debian's openjdk-17-jdk-headless. A major version that is not installed fails the build;
  without system.properties the newest installed JDK is used, with a warning.
* Maven: `./mvnw` when the app has the Maven Wrapper (it downloads Maven unless cached), else
  the platform's `mvn` (apt package maven); `maven.version` is compared with it.
* The goals: `MAVEN_CUSTOM_GOALS` (default `clean dependency:list install`) with
  `MAVEN_CUSTOM_OPTS` (default `-DskipTests`); `settings.xml` at the root, or the
  `MAVEN_SETTINGS_PATH` config var, is passed with `-s`.
* A vendored local repository at `.m2/repository` builds offline (`-o`, that repository as
  `maven.repo.local`). Otherwise the repository is in the build cache and Maven downloads
  plugins and dependencies from its remote repositories (network needed).
* Default process type: Spring Boot `web: java -Dserver.port=$PORT $JAVA_OPTS -jar
  target/<jar>`, Quarkus `web: java -Dquarkus.http.port=$PORT $JAVA_OPTS -jar
  target/quarkus-app/quarkus-run.jar`; otherwise use a Procfile.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
from dataclasses import dataclass

from lang_support import BuildError, version_tuple

POM_FILES = (
    "pom.xml", "pom.atom", "pom.clj", "pom.groovy", "pom.rb", "pom.scala", "pom.yaml", "pom.yml",
)  # fmt: skip
DEFAULT_GOALS = "clean dependency:list install"
DEFAULT_OPTS = "-DskipTests"
VENDORED_REPO = os.path.join(".m2", "repository")


@dataclass(frozen=True)
class Jdk:
    home: str
    version: str  # like 17.0.15

    @property
    def major(self) -> int:
        parts: tuple[int, ...] = version_tuple(self.version)
        if parts[:1] == (1,) and len(parts) > 1:
            return parts[1]  # 1.8.0_392 is Java 8
        return parts[0] if parts else 0


def read_system_properties(app_dir: str) -> dict[str, str]:
    """Java properties (`key=value` or `key: value`, # and ! comments)."""
    path = os.path.join(app_dir, "system.properties")
    props: dict[str, str] = {}
    if not os.path.isfile(path):
        return props
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if not line or line[0] in "#!":
                continue
            match = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)$", line)
            if match:
                props[match.group(1)] = match.group(2).strip()
    return props


def requested_major(value: str) -> int:
    """17 from `17`, `17.0.2`, `zulu-17`, `heroku-17`; 8 from `1.8`."""
    version = value.strip().split("-")[-1]
    parts: tuple[int, ...] = version_tuple(version)
    if not parts:
        raise BuildError(
            f"system.properties java.runtime.version={value!r} is not a Java version (like 17)"
        )
    if parts[0] == 1 and len(parts) > 1:
        return parts[1]
    return parts[0]


def installed_jdks(jvm_dir: str | None = None) -> list[Jdk]:
    """JDKs (with javac) under /usr/lib/jvm, oldest first."""
    root = jvm_dir or os.environ.get("SPRUCE_JVM_DIR") or "/usr/lib/jvm"
    found: dict[str, Jdk] = {}
    for home in sorted(glob.glob(os.path.join(root, "*"))):
        if os.path.islink(home) or not os.path.isfile(os.path.join(home, "bin", "javac")):
            continue
        version = ""
        try:
            with open(os.path.join(home, "release"), encoding="utf-8") as fh:
                match = re.search(r'^JAVA_VERSION="([^"]+)"', fh.read(), re.MULTILINE)
                version = match.group(1) if match else ""
        except OSError:
            pass
        if version:
            found.setdefault(version, Jdk(home=home, version=version))
    return sorted(found.values(), key=lambda j: version_tuple(j.version))


def choose_jdk(props: dict[str, str], jdks: list[Jdk]) -> tuple[Jdk, str | None]:
    """(JDK, warning or None), or BuildError naming what is missing."""
    installed = ", ".join(j.version for j in jdks) or "none"
    wanted = props.get("java.runtime.version", "").strip()
    if not wanted:
        if not jdks:
            raise BuildError(
                "No JDK is installed on this platform (looked in /usr/lib/jvm).\n"
                "The platform operator installs one: apt-get install default-jdk-headless"
            )
        jdk = jdks[-1]
        return jdk, (
            f"No OpenJDK version specified in system.properties: using the platform's newest "
            f"JDK {jdk.version}.\nPin it with java.runtime.version={jdk.major} in "
            "system.properties."
        )
    major = requested_major(wanted)
    matching = [j for j in jdks if j.major == major]
    if not matching:
        raise BuildError(
            f"This app needs Java {major} (system.properties java.runtime.version={wanted}) "
            f"but that JDK is not installed on this platform.\nInstalled JDKs: {installed}. "
            f"The platform operator installs it: apt-get install openjdk-{major}-jdk-headless"
        )
    jdk = matching[-1]
    if len(version_tuple(wanted.split("-")[-1])) > 1 and not wanted.startswith("1."):
        if jdk.version != wanted.split("-")[-1]:
            return jdk, f"Java {wanted} requested: using the platform's JDK {jdk.version}"
    return jdk, None


def has_wrapper(app_dir: str) -> bool:
    return os.path.isfile(os.path.join(app_dir, "mvnw")) and os.path.isfile(
        os.path.join(app_dir, ".mvn", "wrapper", "maven-wrapper.properties")
    )


def vendored_repository(app_dir: str) -> str | None:
    path = os.path.join(app_dir, VENDORED_REPO)
    return path if os.path.isdir(path) else None


def settings_file(app_dir: str, config: dict[str, str]) -> str | None:
    custom = config.get("MAVEN_SETTINGS_PATH", "").strip()
    if custom:
        path = custom if os.path.isabs(custom) else os.path.join(app_dir, custom)
        if not os.path.isfile(path):
            raise BuildError(f"MAVEN_SETTINGS_PATH names {custom}, which does not exist")
        return path
    default = os.path.join(app_dir, "settings.xml")
    return default if os.path.isfile(default) else None


def maven_argv(
    mvn: str, app_dir: str, cache_dir: str, config: dict[str, str]
) -> tuple[list[str], bool]:
    """(argv, offline) of the Maven build."""
    vendored = vendored_repository(app_dir)
    repo = vendored or os.path.join(cache_dir, ".m2", "repository")
    argv = [mvn, "-B", f"-Dmaven.repo.local={repo}"]
    if vendored:
        argv.append("-o")
    settings = settings_file(app_dir, config)
    if settings:
        argv += ["-s", settings]
    opts = config.get("MAVEN_CUSTOM_OPTS", DEFAULT_OPTS)
    goals = config.get("MAVEN_CUSTOM_GOALS", DEFAULT_GOALS)
    argv += shlex.split(opts)
    if "dependency:list" in goals.split():
        argv.append("-DoutputFile=target/mvn-dependency-list.log")
    argv += shlex.split(goals)
    return argv, vendored is not None


def maven_version(output: str) -> str:
    """3.8.7 from `mvn -v`'s first line (which may carry terminal colour codes)."""
    match = re.search(r"Apache Maven (\d+(?:\.\d+)+)", re.sub(r"\x1b\[[0-9;]*m", "", output))
    return match.group(1) if match else ""


def default_process_types(app_dir: str) -> dict[str, str]:
    try:
        with open(os.path.join(app_dir, "pom.xml"), encoding="utf-8", errors="replace") as fh:
            pom = fh.read()
    except OSError:
        return {}
    if "<groupId>org.springframework.boot</groupId>" in pom:
        jars = sorted(
            os.path.relpath(p, app_dir)
            for p in glob.glob(os.path.join(app_dir, "target", "*.jar"))
            if not p.endswith(("-sources.jar", "-javadoc.jar", "-plain.jar"))
        )
        if jars:
            return {"web": f"java -Dserver.port=$PORT $JAVA_OPTS -jar {jars[0]}"}
    if "<groupId>io.quarkus" in pom and os.path.isfile(
        os.path.join(app_dir, "target", "quarkus-app", "quarkus-run.jar")
    ):
        return {
            "web": "java -Dquarkus.http.port=$PORT $JAVA_OPTS "
            "-jar target/quarkus-app/quarkus-run.jar"
        }
    return {}
