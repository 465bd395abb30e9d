"""The Go, Ruby, Java and PHP buildpacks: detection, their rules, and the failures a user sees
when the platform lacks a toolchain or has another version (their real bin/ scripts run)."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spruce.compile.buildpacks import BUILTIN_DIR, SHARED_LIB_DIR, builtin_name, detect_builtin

sys.path.insert(0, str(SHARED_LIB_DIR))
go_lang = importlib.import_module("go_lang")
ruby_lang = importlib.import_module("ruby_lang")
java_lang = importlib.import_module("java_lang")
php_lang = importlib.import_module("php_lang")
lang_support = importlib.import_module("lang_support")


def make(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def compile_(
    lang: str, app: Path, tmp: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run a buildpack's real bin/compile the way the runner does (BUILD_DIR CACHE_DIR ENV_DIR)."""
    (tmp / "cache").mkdir(exist_ok=True)
    (tmp / "env").mkdir(exist_ok=True)
    script = BUILTIN_DIR / lang / "bin" / "compile"
    return subprocess.run(
        [sys.executable, str(script), str(app), str(tmp / "cache"), str(tmp / "env")],
        capture_output=True, text=True, timeout=60, env={**env, "HOME": str(tmp)},
    )  # fmt: skip


def release(lang: str, app: Path) -> dict[str, object]:
    script = BUILTIN_DIR / lang / "bin" / "release"
    out = subprocess.run(
        [sys.executable, str(script), str(app)], capture_output=True, text=True, check=True
    ).stdout
    data = yaml.safe_load(out)
    assert isinstance(data, dict)
    return data


# -- detection ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (["go.mod", "package.json"], ("heroku/go", "Go")),
        (["Gemfile", "package.json"], ("heroku/ruby", "Ruby")),
        (["Gemfile", "requirements.txt"], ("heroku/ruby", "Ruby")),  # Heroku: Ruby first
        (["pom.xml", "package.json"], ("heroku/java", "Java")),
        (["pom.yaml"], ("heroku/java", "Java")),
        (["composer.json", "package.json"], ("heroku/php", "PHP")),
        (["index.php"], ("heroku/php", "PHP")),
        (["requirements.txt", "go.mod"], ("heroku/python", "Python")),
        (["sub/go.mod", "Procfile"], ("heroku/procfile", "Procfile")),
        (["build.gradle"], None),
    ],
)
def test_detection(tmp_path: Path, files: list[str], expected: tuple[str, str] | None) -> None:
    make(tmp_path, {rel: "{}\n" if rel.endswith(".json") else "x\n" for rel in files})
    assert detect_builtin(tmp_path) == expected


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        ("heroku/go", "go"),
        ("ruby", "ruby"),
        ("heroku/java", "java"),
        ("heroku/php", "php"),
        ("https://github.com/heroku/heroku-buildpack-go", "go"),
        ("https://github.com/heroku/heroku-buildpack-ruby.git", "ruby"),
        ("https://github.com/heroku/heroku-buildpack-java", "java"),
        ("https://github.com/heroku/heroku-buildpack-php", "php"),
        ("heroku/gradle", None),
        # The official tarballs are downloaded and run as they are, not mapped.
        ("https://buildpack-registry.s3.amazonaws.com/buildpacks/heroku/ruby.tgz", None),
    ],
)
def test_names(ref: str, name: str | None) -> None:
    assert builtin_name(ref) == name


# -- a missing toolchain fails the build naming it and its package ----------------------------
EMPTY_PATH = {"LANG": "C.UTF-8"}


@pytest.mark.parametrize(
    ("lang", "files", "tool", "package"),
    [
        ("go", {"go.mod": "module example.com/x\n\ngo 1.19\n"}, "Go", "golang-go"),
        ("ruby", {"Gemfile": "", "Gemfile.lock": "GEM\n"}, "Ruby", "ruby"),
        ("php", {"composer.json": "{}"}, "PHP", "php-cli"),
    ],
)
def test_missing_toolchain_is_named(
    tmp_path: Path, lang: str, files: dict[str, str], tool: str, package: str
) -> None:
    app = make(tmp_path / "app", files)
    empty = tmp_path / "bin"
    empty.mkdir()
    res = compile_(lang, app, tmp_path, {**EMPTY_PATH, "PATH": str(empty)})
    assert res.returncode == 1
    assert f" !     {tool} is not installed on this platform" in res.stdout
    assert f"apt-get install {package}" in res.stdout


def fake_jdk(root: Path, name: str, version: str) -> Path:
    home = make(root / name, {"bin/javac": "", "release": f'JAVA_VERSION="{version}"\n'})
    return home


def test_missing_jdk_and_maven_are_named(tmp_path: Path) -> None:
    app = make(
        tmp_path / "app",
        {"pom.xml": "<project/>", "system.properties": "java.runtime.version=21\n"},
    )
    jvm = tmp_path / "jvm"
    jvm.mkdir()
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**EMPTY_PATH, "PATH": str(empty), "SPRUCE_JVM_DIR": str(jvm)}
    res = compile_("java", app, tmp_path, env)
    assert res.returncode == 1
    assert "This app needs Java 21 (system.properties java.runtime.version=21)" in res.stdout
    assert "Installed JDKs: none" in res.stdout and "openjdk-21-jdk-headless" in res.stdout
    # A JDK 21 is there now, Maven is not.
    fake_jdk(jvm, "java-21-openjdk-amd64", "21.0.5")
    res = compile_("java", app, tmp_path, env)
    assert res.returncode == 1
    assert "Using OpenJDK 21.0.5" in res.stdout
    assert "Maven is not installed on this platform" in res.stdout
    assert "apt-get install maven" in res.stdout


def test_composer_missing_is_named_when_packages_are_required(tmp_path: Path) -> None:
    app = make(tmp_path / "app", {
        "composer.json": '{"require": {"php": ">=8.0", "monolog/monolog": "^3"}}',
        "composer.lock": "{}",
    })  # fmt: skip
    php = Path(shutil.which("php") or "/usr/bin/php")
    only_php = tmp_path / "bin"
    only_php.mkdir()
    (only_php / "php").symlink_to(php)
    res = compile_("php", app, tmp_path, {**EMPTY_PATH, "PATH": str(only_php)})
    assert res.returncode == 1, res.stdout
    assert "Composer is not installed on this platform" in res.stdout
    assert "apt-get install composer" in res.stdout


# -- versions the platform cannot serve (the installed toolchains answer) ---------------------
PATH_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}


def test_go_version_newer_than_installed_fails(tmp_path: Path) -> None:
    app = make(tmp_path / "app", {"go.mod": "module example.com/x\n\ngo 1.99\n"})
    res = compile_("go", app, tmp_path, PATH_ENV)
    assert res.returncode == 1
    assert "This app needs Go 1.99 but the platform's Go is" in res.stdout


def test_ruby_version_of_another_minor_fails(tmp_path: Path) -> None:
    lock = "GEM\n  specs:\n\nRUBY VERSION\n   ruby 2.7.1p83\n\nBUNDLED WITH\n   2.3.15\n"
    app = make(tmp_path / "app", {"Gemfile": "", "Gemfile.lock": lock})
    res = compile_("ruby", app, tmp_path, PATH_ENV)
    assert res.returncode == 1
    assert "This app needs Ruby 2.7.1 (Gemfile.lock RUBY VERSION)" in res.stdout


def test_ruby_without_lockfile_fails_like_heroku(tmp_path: Path) -> None:
    app = make(tmp_path / "app", {"Gemfile": 'source "https://rubygems.org"\n'})
    res = compile_("ruby", app, tmp_path, PATH_ENV)
    assert res.returncode == 1 and "Gemfile.lock required. Please check it in." in res.stdout


def test_php_version_and_extension_requirements(tmp_path: Path) -> None:
    app = make(tmp_path / "app", {"composer.json": '{"require": {"php": "^9.0"}}'})
    res = compile_("php", app, tmp_path, PATH_ENV)
    assert res.returncode == 1
    assert "This app needs PHP ^9.0 (composer.json require.php)" in res.stdout
    (app / "composer.json").write_text('{"require": {"php": ">=8.0", "ext-nosuchext": "*"}}')
    res = compile_("php", app, tmp_path, PATH_ENV)
    assert res.returncode == 1
    assert (
        "does not load: nosuchext" in res.stdout and "apt-get install php-nosuchext" in res.stdout
    )


def test_php_lock_required_when_packages_are(tmp_path: Path) -> None:
    app = make(tmp_path / "app", {"composer.json": '{"require": {"monolog/monolog": "^3"}}'})
    res = compile_("php", app, tmp_path, PATH_ENV)
    assert res.returncode == 1 and "no 'composer.lock' was found" in res.stdout


# -- the rules ------------------------------------------------------------------------------
def test_go_mod_and_versions(tmp_path: Path) -> None:
    make(tmp_path, {"go.mod": (
        "module github.com/acme/api/v2\n\n// +heroku goVersion go1.21\n"
        "// +heroku install ./cmd/... ./tools/x\ngo 1.20\ntoolchain go1.21.4\n"
    )})  # fmt: skip
    mod = go_lang.read_go_mod(str(tmp_path))
    assert (mod.module, mod.go, mod.heroku_go_version) == (
        "github.com/acme/api/v2",
        "1.20",
        "go1.21",
    )
    assert mod.install == ["./cmd/...", "./tools/x"]
    assert go_lang.wanted_version(mod, {}) == ("go1.21", "go.mod's // +heroku goVersion")
    assert go_lang.wanted_version(mod, {"GOVERSION": "1.19"})[0] == "go1.19"
    assert go_lang.packages(mod, {}) == ["./cmd/...", "./tools/x"]
    assert go_lang.packages(mod, {"GO_INSTALL_PACKAGE_SPEC": "./a ./b"}) == ["./a", "./b"]
    assert go_lang.binary_name(mod.module) == "api"
    assert go_lang.check_version("go1.19", "go1.19.8") is None
    assert "newer go1.19.8" in (go_lang.check_version("go1.18", "go1.19.8") or "")
    assert "same minor" in (go_lang.check_version("go1.19.2", "go1.19.8") or "")
    with pytest.raises(lang_support.BuildError, match="needs Go 1.20"):
        go_lang.check_version("go1.20", "go1.19.8")
    argv = go_lang.install_argv(
        "go", ["."], True, {"GO_LINKER_SYMBOL": "main.v", "GO_LINKER_VALUE": "1"}
    )
    assert argv == [
        "go",
        "install",
        "-v",
        "-tags",
        "heroku",
        "-mod=vendor",
        "-ldflags",
        "-X main.v=1",
        ".",
    ]


def test_ruby_lockfile_and_process_types(tmp_path: Path) -> None:
    lock = ruby_lang.parse_lockfile(
        "GEM\n  remote: https://rubygems.org/\n  specs:\n    rack (3.0.8)\n    railties (7.1.2)\n"
        "      rack (>= 2.2.4)\n    nokogiri (1.15.5-x86_64-linux)\n\nRUBY VERSION\n"
        "   ruby 3.1.4p223\n\nBUNDLED WITH\n   2.4.22\n"
    )
    assert lock.ruby == "3.1.4" and lock.bundled_with == "2.4.22"
    assert lock.gems == {"rack": "3.0.8", "railties": "7.1.2", "nokogiri": "1.15.5"}
    assert "same minor" in (ruby_lang.check_ruby(lock, "3.1.2") or "")
    with pytest.raises(lang_support.BuildError, match="needs Ruby 3.1.4"):
        ruby_lang.check_ruby(lock, "3.3.0")
    assert "using the platform's Bundler 2.3.15" in (ruby_lang.check_bundler(lock, "2.3.15") or "")
    with pytest.raises(lang_support.BuildError, match="Bundler 1.17.3"):
        ruby_lang.check_bundler(ruby_lang.Lockfile(bundled_with="1.17.3"), "2.3.15")
    assert ruby_lang.default_process_types(str(tmp_path), lock)["web"] == (
        "bin/rails server -p ${PORT:-5000} -e $RAILS_ENV"
    )
    assert ruby_lang.config_vars(lock)["RAILS_ENV"] == "production"
    rack = ruby_lang.Lockfile(gems={"rack": "3.0.8"})
    (tmp_path / "config.ru").write_text("run ->(env) { [200, {}, ['ok']] }\n")
    assert ruby_lang.default_process_types(str(tmp_path), rack) == {
        "web": "bundle exec rackup config.ru -p ${PORT:-5000}",
        "console": "bundle exec irb",
        "rake": "bundle exec rake",
    }
    make(tmp_path, {"Gemfile.lock": "GEM\n  specs:\n    rack (3.0.8)\n"})
    data = release("ruby", tmp_path)
    assert data["default_process_types"] == ruby_lang.default_process_types(str(tmp_path), rack)
    assert data["config_vars"] == {"RACK_ENV": "production"}


def test_java_jdk_choice_and_maven_command(tmp_path: Path) -> None:
    jvm = tmp_path / "jvm"
    fake_jdk(jvm, "java-17-openjdk-amd64", "17.0.15")
    fake_jdk(jvm, "java-21-openjdk-amd64", "21.0.5")
    fake_jdk(jvm, "java-8-openjdk-amd64", "1.8.0_392")
    (jvm / "default-java").symlink_to(jvm / "java-17-openjdk-amd64")
    jdks = java_lang.installed_jdks(str(jvm))
    assert [j.major for j in jdks] == [8, 17, 21]
    assert java_lang.choose_jdk({"java.runtime.version": "1.8"}, jdks)[0].major == 8
    assert java_lang.choose_jdk({"java.runtime.version": "zulu-17"}, jdks) == (jdks[1], None)
    jdk, note = java_lang.choose_jdk({"java.runtime.version": "21.0.1"}, jdks)
    assert jdk.version == "21.0.5" and "using the platform's JDK 21.0.5" in (note or "")
    jdk, note = java_lang.choose_jdk({}, jdks)
    assert jdk.major == 21 and "No OpenJDK version specified" in (note or "")
    with pytest.raises(lang_support.BuildError, match="needs Java 11"):
        java_lang.choose_jdk({"java.runtime.version": "11"}, jdks)
    app = make(tmp_path / "app", {
        "pom.xml": "<project/>", "settings.xml": "<settings/>",
        "system.properties": "# pinned\njava.runtime.version = 17\nmaven.version=3.9.6\n",
    })  # fmt: skip
    assert java_lang.read_system_properties(str(app)) == {
        "java.runtime.version": "17", "maven.version": "3.9.6",
    }  # fmt: skip
    argv, offline = java_lang.maven_argv("mvn", str(app), "/cache", {})
    assert not offline
    assert argv == [
        "mvn", "-B", "-Dmaven.repo.local=/cache/.m2/repository", "-s", f"{app}/settings.xml",
        "-DskipTests", "-DoutputFile=target/mvn-dependency-list.log", "clean",
        "dependency:list", "install",
    ]  # fmt: skip
    (app / ".m2" / "repository").mkdir(parents=True)
    argv, offline = java_lang.maven_argv(
        "mvn", str(app), "/cache", {"MAVEN_CUSTOM_GOALS": "package", "MAVEN_CUSTOM_OPTS": "-X"}
    )
    assert offline and argv[2:4] == [f"-Dmaven.repo.local={app}/.m2/repository", "-o"]
    assert argv[-2:] == ["-X", "package"]
    assert java_lang.maven_version("\x1b[1mApache Maven 3.8.7\x1b[m\nMaven home") == "3.8.7"
    (app / "pom.xml").write_text("<groupId>org.springframework.boot</groupId>")
    make(app, {"target/demo-0.1.jar": "", "target/demo-0.1-plain.jar": ""})
    assert release("java", app)["default_process_types"] == {
        "web": "java -Dserver.port=$PORT $JAVA_OPTS -jar target/demo-0.1.jar"
    }


@pytest.mark.parametrize(
    ("constraint", "ok"),
    [
        ("^8.1", True), ("^8.3", False), ("~8.2.0", True), ("~8.1.0", False), ("~8.1", True),
        (">=8.0 <8.4", True), (">= 8.0, < 8.2", False), ("8.1.* || 8.2.*", True),
        ("7.4.*|8.0.*", False), ("*", True), ("8.0 - 8.2", True), ("8.0 - 8.1", False),
        ("^7.4 || ^8.0", True), ("8.2", False), ("8.2.5", True), (">=8.3@dev", False),
    ],
)  # fmt: skip
def test_php_constraints(constraint: str, ok: bool) -> None:
    assert php_lang.satisfies(constraint, "8.2.5") is ok


def test_php_rules_and_default_web(tmp_path: Path) -> None:
    composer = {
        "require": {"php": ">=8.0", "ext-mbstring": "*", "ext-pdo_pgsql": "*", "psr/log": "^3"},
        "config": {"bin-dir": "bin"},
        "scripts": {"compile": ["php artisan optimize"]},
    }
    assert php_lang.missing_extensions(composer, {"mbstring", "json"}) == ["pdo_pgsql"]
    assert php_lang.needs_lock(composer) and not php_lang.needs_lock({"require": {"php": "^8"}})
    assert php_lang.has_compile_script(composer) and php_lang.bin_dir(composer) == "bin"
    assert php_lang.loaded_modules("[PHP Modules]\nCore\njson\n\n[Zend Modules]\n") == {
        "core",
        "json",
    }
    assert release("php", tmp_path)["default_process_types"] == {"web": "heroku-php-apache2"}


def test_php_boot_command_serves_its_docroot(tmp_path: Path) -> None:
    """heroku-php-apache2 DOCROOT in a dyno: PHP's built-in server on $PORT for that root."""
    import socket
    import time

    import httpx

    make(tmp_path, {"public/index.php": "<?php echo 'docroot ' . basename(__DIR__);"})
    boot = tmp_path / "heroku-php-apache2"
    boot.write_text(php_lang.boot_script("heroku-php-apache2"))
    boot.chmod(0o755)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(boot), "-C", "apache.conf", "public/"], cwd=tmp_path,
        env={**PATH_ENV, "PORT": str(port)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        assert r.status_code == 200 and r.text == "docroot public"
    finally:
        proc.terminate()
        proc.wait(10)


def test_ruby_gems_come_back_from_the_build_cache(tmp_path: Path) -> None:
    """A second build restores vendor/bundle from the cache; Bundler then installs nothing."""
    from e2e.lang_apps import ruby_app

    source = ruby_app(tmp_path / "source", tmp_path / "work")
    outputs = []
    for n in (1, 2):
        build = tmp_path / f"build{n}"
        shutil.copytree(source, build)
        res = compile_("ruby", build, tmp_path, PATH_ENV)
        assert res.returncode == 0, res.stdout
        outputs.append(res.stdout)
        assert (build / "vendor" / "bundle").is_dir()
    assert "Installing spruce_greeting 1.0.0" in outputs[0]
    assert "Restoring installed gems from the build cache" not in outputs[0]
    assert "Restoring installed gems from the build cache" in outputs[1]
    assert "Using spruce_greeting 1.0.0" in outputs[1]
    assert "Installing spruce_greeting" not in outputs[1]


def test_php_without_packages_still_gets_its_autoloader(tmp_path: Path) -> None:
    app = make(tmp_path / "app", {
        "composer.json": '{"require": {"php": ">=8.0"}, "autoload": {"psr-4": {"App\\\\": "src/"}}}',
        "src/Hello.php": "<?php\nnamespace App;\nfinal class Hello { const TEXT = 'autoloaded'; }\n",
        "index.php": "<?php require 'vendor/autoload.php'; echo App\\Hello::TEXT;\n",
    })  # fmt: skip
    res = compile_("php", app, tmp_path, PATH_ENV)
    assert res.returncode == 0, res.stdout
    assert "composer.json requires no packages: generating the autoloader" in res.stdout
    php = subprocess.run(["php", "index.php"], cwd=app, capture_output=True, text=True)
    assert php.stdout == "autoloaded"
    assert (app / ".heroku" / "php" / "bin" / "heroku-php-apache2").stat().st_mode & 0o111
