# ruff: noqa: UP031  (%-formatted messages, like the Python buildpack's)
"""The classic heroku/nodejs buildpack's compile, as Heroku's Node.js buildpack behaves
(python3 stdlib only; the steps run the node and npm installed on the platform).

1. Creating runtime environment: NODE_ENV=production and Heroku's other defaults; config vars
   (NPM_CONFIG_*, YARN_*, NODE_ENV...) apply to the build.
2. Installing binaries: `engines.node` must be satisfied by the platform's Node.js (npm's own
   semver decides). Spruce does not download Node.js, so a range the installed version does
   not satisfy fails the build, saying which version is installed.
3. Package manager by lock file: package-lock.json / npm-shrinkwrap.json -> npm, yarn.lock ->
   Yarn (classic 1.x, or 2+ "berry" when package.json's `packageManager` says so),
   pnpm-lock.yaml -> pnpm. Yarn and pnpm are installed with npm from the npm registry at the
   version in `packageManager` (or an exact `engines.yarn` / `engines.pnpm`), into the build
   cache; without one, Yarn 1.22.22 / the newest pnpm 9. (Corepack is not used: the signing
   keys it ships reject current registry metadata.) Two lock files fail the build, as on
   Heroku.
4. Scripts: `heroku-prebuild` before installing, `heroku-postbuild` (else `build`) after,
   `heroku-cleanup` after pruning.
5. devDependencies are installed for the build, then pruned (unless NPM_CONFIG_PRODUCTION or
   YARN_PRODUCTION is false, or NODE_ENV is not production).
6. Cache: the package manager's own cache (npm cache, Yarn cache, pnpm store) and the
   directories in package.json's `cacheDirectories` are kept between builds while Node.js and
   the package manager keep their versions; NODE_MODULES_CACHE=false turns it off.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import nodejs_lang
from python_lang import Log, run

DENY = {"PATH", "GIT_DIR", "LD_PRELOAD", "LD_LIBRARY_PATH", "HOME", "CPATH", "LIBRARY_PATH"}
DEFAULTS = {
    "NPM_CONFIG_LOGLEVEL": "error",
    "NODE_VERBOSE": "false",
    "NODE_ENV": "production",
    "NODE_MODULES_CACHE": "true",
}
# Used when package.json names no version; pnpm's is an npm range (the newest 9.x).
DEFAULT_VERSIONS = {"yarn": "1.22.22", "pnpm": "9"}
NPM_PACKAGES = {"yarn": "yarn", "pnpm": "pnpm", "berry": "@yarnpkg/cli-dist"}
LOCKFILES = (
    ("npm", "package-lock.json"),
    ("npm", "npm-shrinkwrap.json"),
    ("yarn", "yarn.lock"),
    ("pnpm", "pnpm-lock.yaml"),
)


class Build:
    def __init__(self, build_dir: str, cache_dir: str, env_dir: str, log: Log) -> None:
        self.dir, self.cache_root, self.log = build_dir, cache_dir, log
        self.pkg = nodejs_lang.package_json(build_dir)
        self.user = _env_dir_vars(env_dir)
        self.env: dict[str, str] = {}
        self.manager = "npm"
        self.manager_version = ""  # from packageManager / engines, "" for the default
        self.cache = os.path.join(cache_dir, "node")
        self.node_version = self.npm_version = ""
        self.restored = False
        self.tool: list[str] = []

    # -- steps -------------------------------------------------------------------------------
    def runtime_environment(self) -> None:
        self.log.topic("Creating runtime environment")
        env = dict(os.environ)
        for name, value in DEFAULTS.items():
            env[name] = self.user.get(name, value)
            self.log.detail("%s=%s" % (name, env[name]))
        env.update({k: v for k, v in self.user.items() if k not in DENY})
        env.update(nodejs_lang.NPM_ENV)
        self.env = env

    def binaries(self) -> None:
        self.log.topic("Installing binaries")
        if shutil.which("node", path=self.env.get("PATH")) is None:
            self.log.die("Node.js is not installed on this platform: install the `nodejs` package.")
        node = self._output(["node", "--version"]).lstrip("v")
        npm = self._output(["npm", "--version"])
        engines = self.pkg.get("engines") if isinstance(self.pkg.get("engines"), dict) else {}
        assert isinstance(engines, dict)
        wanted_node, wanted_npm = engines.get("node"), engines.get("npm")
        self.log.detail("engines.node (package.json):  %s" % (wanted_node or "unspecified"))
        self.log.detail(
            "engines.npm (package.json):   %s" % (wanted_npm or "unspecified (use default)")
        )
        self.log.detail("")
        if wanted_node:
            self.log.detail("Resolving node version %s..." % wanted_node)
            ok = self._satisfies(node, str(wanted_node))
            if ok is None:
                self.log.die(
                    'Invalid semantic version "%s" in engines.node (package.json).\n'
                    'Use a semver range such as "20.x" or ">=20".' % wanted_node
                )
            if not ok:
                self.log.die(
                    "Could not find Node version corresponding to version requirement: %s\n\n"
                    "Spruce uses the Node.js installed on the platform and does not download\n"
                    "others. Installed: Node.js %s. Change engines.node in package.json to a\n"
                    'range that includes it, such as "%s.x".'
                    % (wanted_node, node, node.split(".")[0])
                )
        self.log.detail("Using node %s (installed on the platform; Spruce does not download Node.js)"
                        % node)  # fmt: skip
        if wanted_npm and self._satisfies(npm, str(wanted_npm)) is False:
            self.log.warn("engines.npm %s is not satisfied by the platform's npm %s; using npm %s."
                          % (wanted_npm, npm, npm))  # fmt: skip
        else:
            self.log.detail("Using default npm version: %s" % npm)
        self.node_version, self.npm_version = node, npm

    def choose_manager(self) -> None:
        found = [(m, f) for m, f in LOCKFILES if os.path.isfile(os.path.join(self.dir, f))]
        managers = sorted({m for m, _f in found})
        if len(managers) > 1:
            names = [f for _m, f in found]
            self.log.die(
                "Two different lockfiles found: %s\n\n"
                "More than one package manager has created lockfiles for this application,\n"
                "but only one can be used to install dependencies. Installing dependencies\n"
                "using different package managers can result in missing packages or subtle\n"
                "bugs in production. Delete all but one of: %s."
                % (" and ".join(names), ", ".join(names))
            )
        declared = self.pkg.get("packageManager")
        declared_name, declared_version = "", ""
        if isinstance(declared, str) and declared:
            match = re.fullmatch(r"(npm|yarn|pnpm)@([0-9][^+\s]*)(\+.*)?", declared.strip())
            if not match:
                self.log.die("Invalid packageManager \"%s\" in package.json: use a form such as "
                             "\"pnpm@9.15.0\" or \"yarn@4.5.3\"." % declared)  # fmt: skip
                raise SystemExit(1)
            declared_name, declared_version = match.group(1), match.group(2)
        self.manager = managers[0] if managers else (declared_name or "npm")
        if declared_name and declared_name != self.manager:
            self.log.die(
                "package.json's packageManager is %s, but the lockfile is %s's (%s).\n"
                "Delete the lockfile or change packageManager so they agree."
                % (declared_name, self.manager, found[0][1])
            )
        engines = self.pkg.get("engines") if isinstance(self.pkg.get("engines"), dict) else {}
        assert isinstance(engines, dict)
        engine_version = engines.get(self.manager)
        if declared_version:
            self.manager_version = declared_version
        elif isinstance(engine_version, str) and re.fullmatch(r"\d+\.\d+\.\d+", engine_version):
            self.manager_version = engine_version
        if self.manager == "yarn" and not self.manager_version and self._berry_lockfile():
            self.log.die(
                "yarn.lock was written by Yarn 2 or newer, but no Yarn version is set.\n"
                'Add the version to package.json, for example: "packageManager": "yarn@4.5.3".'
            )
        if self.manager == "pnpm" and not self.manager_version:
            self.manager_version = DEFAULT_VERSIONS["pnpm"]
        if self.manager == "yarn" and not self.manager_version:
            self.manager_version = DEFAULT_VERSIONS["yarn"]

    def restore_cache(self) -> None:
        self.log.topic("Restoring cache")
        if self.env.get("NODE_MODULES_CACHE") == "false":
            self.log.detail("Caching has been disabled because NODE_MODULES_CACHE=false")
            shutil.rmtree(self.cache, ignore_errors=True)
            self.cache = os.path.join(self.env.get("TMPDIR", "/tmp"), "node-cache")
        signature = "%s;%s;%s@%s;%s" % (self.node_version, self.npm_version, self.manager,
                                        self.manager_version, self.env.get("STACK", ""))  # fmt: skip
        sig_file = os.path.join(self.cache, "signature")
        previous = _read(sig_file)
        self.restored = previous == signature
        if previous is not None and not self.restored:
            self.log.detail("Cached directories were not restored due to a change in version of "
                            "node, npm, yarn, pnpm or stack")  # fmt: skip
            shutil.rmtree(self.cache, ignore_errors=True)
        elif previous is None:
            self.log.detail("Nothing cached yet: this is the first build with this cache")
        os.makedirs(self.cache, exist_ok=True)
        with open(sig_file, "w", encoding="utf-8") as fh:
            fh.write(signature)
        if self.restored:
            self.log.detail("- %s cache" % self.manager)
            for name in self._cache_directories():
                saved = os.path.join(self.cache, "dirs", name)
                target = os.path.join(self.dir, name)
                if os.path.isdir(saved) and not os.path.exists(target):
                    shutil.copytree(saved, target, symlinks=True)
                    self.log.detail("- %s" % name)
        self.env.update(
            npm_config_cache=os.path.join(self.cache, "npm"),
            YARN_CACHE_FOLDER=os.path.join(self.cache, "yarn"),
            YARN_GLOBAL_FOLDER=os.path.join(self.cache, "yarn-berry"),
            YARN_ENABLE_GLOBAL_CACHE="true",
            YARN_NPM_REGISTRY_SERVER=self._registry().rstrip("/"),
            YARN_ENABLE_TELEMETRY="0",
        )

    def install_manager(self) -> None:
        """Yarn or pnpm at the chosen version, installed with npm into the build cache."""
        if self.manager == "npm":
            return
        kind = "berry" if self._berry() else self.manager
        root = os.path.join(self.cache, "tools", "%s-%s" % (kind, self.manager_version))
        exe = os.path.join(root, "node_modules", ".bin", self.manager)
        if not os.access(exe, os.X_OK):
            spec = "%s@%s" % (NPM_PACKAGES[kind], self.manager_version)
            self.log.detail("Installing %s %s (npm install %s)" % (self.manager,
                            self.manager_version, spec))  # fmt: skip
            shutil.rmtree(root, ignore_errors=True)
            os.makedirs(root)
            argv = ["npm", "install", "--prefix", root, "--no-save", "--no-package-lock",
                    "--ignore-scripts", spec]  # fmt: skip
            run(argv, self.env, root, self.log)
        self.tool = [exe]
        self.log.detail("Using %s %s" % (self.manager, self._output([exe, "--version"])))

    def install(self) -> None:
        self.script("heroku-prebuild")
        self.log.topic("Installing dependencies")
        lock = {"npm": "package-lock.json", "yarn": "yarn.lock", "pnpm": "pnpm-lock.yaml"}
        has_lock = any(os.path.isfile(os.path.join(self.dir, f)) for m, f in LOCKFILES
                       if m == self.manager)  # fmt: skip
        env = dict(self.env)
        if self.manager == "npm":
            argv = ["npm", "ci" if has_lock else "install", "--include=dev"]
            if self.restored:
                argv.append("--prefer-offline")
        elif self.manager == "yarn" and self._berry():
            argv = [*self._tool(), "install", "--immutable" if has_lock else "--no-immutable"]
        elif self.manager == "yarn":
            argv = [*self._tool(), "install", "--production=false", "--ignore-engines"]
            argv += ["--frozen-lockfile"] if has_lock else []
            argv += ["--prefer-offline"] if self.restored else []
        else:
            env["npm_config_production"] = "false"  # devDependencies too, despite NODE_ENV
            argv = [*self._tool(), "install", "--store-dir", self._pnpm_store()]
            argv += ["--frozen-lockfile"] if has_lock else ["--no-frozen-lockfile"]
            argv += ["--prefer-offline"] if self.restored else []
        what = lock[self.manager] if has_lock else "package.json"
        self.log.detail("Installing node modules (%s)" % what)
        run(argv, env, self.dir, self.log)

    def build_scripts(self) -> None:
        if nodejs_lang.has_script(self.dir, "heroku-postbuild"):
            self.log.topic("Build")
            self.script("heroku-postbuild", topic=False)
        elif nodejs_lang.has_script(self.dir, "build"):
            self.log.topic("Build")
            self.script("build", topic=False)

    def save_cache(self) -> None:
        self.log.topic("Caching build")
        self.log.detail("- %s cache" % self.manager)
        for name in self._cache_directories():
            source = os.path.join(self.dir, name)
            saved = os.path.join(self.cache, "dirs", name)
            shutil.rmtree(saved, ignore_errors=True)
            if os.path.isdir(source):
                shutil.copytree(source, saved, symlinks=True)
                self.log.detail("- %s" % name)

    def prune(self) -> None:
        self.log.topic("Pruning devDependencies")
        for var in ("NPM_CONFIG_PRODUCTION", "YARN_PRODUCTION"):
            if self.env.get(var, "").lower() == "false":
                self.log.detail("Skipping because %s is 'false'" % var)
                return
        if self.env.get("NODE_ENV") != "production":
            self.log.detail("Skipping because NODE_ENV is not 'production'")
            return
        if not os.path.isdir(os.path.join(self.dir, "node_modules")):
            self.log.detail("Skipping because there is no node_modules directory")
            return
        if self.manager == "npm":
            argv = ["npm", "prune", "--omit=dev"]
        elif self.manager == "yarn" and self._berry():
            if self.env.get("YARN2_SKIP_PRUNING", "").lower() == "true":
                self.log.detail("Skipping because YARN2_SKIP_PRUNING is 'true'")
                return
            argv = [*self._tool(), "workspaces", "focus", "--all", "--production"]
        elif self.manager == "yarn":
            argv = [*self._tool(), "install", "--production=true", "--ignore-engines",
                    "--ignore-scripts", "--prefer-offline", "--frozen-lockfile"]  # fmt: skip
        else:
            # `pnpm prune` asks before reinstalling from its store: the same, non-interactively.
            argv = [*self._tool(), "install", "--prod", "--prefer-offline", "--ignore-scripts",
                    "--store-dir", self._pnpm_store()]  # fmt: skip
            if os.path.isfile(os.path.join(self.dir, "pnpm-lock.yaml")):
                argv.append("--frozen-lockfile")
        run(argv, self.env, self.dir, self.log)

    def finish(self) -> None:
        self.script("heroku-cleanup")
        profile_d = os.path.join(self.dir, ".profile.d")
        os.makedirs(profile_d, exist_ok=True)
        with open(os.path.join(profile_d, "nodejs.sh"), "w", encoding="utf-8") as fh:
            fh.write('export PATH="$HOME/node_modules/.bin:$PATH"\n'
                     'export NODE_ENV="${NODE_ENV:-production}"\n')  # fmt: skip
        self.log.topic("Build succeeded!")

    # -- helpers -----------------------------------------------------------------------------
    def script(self, name: str, topic: bool = True) -> None:
        if not nodejs_lang.has_script(self.dir, name):
            return
        if topic:
            self.log.topic("Running %s" % name)
        else:
            self.log.detail("Running %s" % name)
        runner = ["npm"] if self.manager == "npm" else self._tool()
        run([*runner, "run", name], self.env, self.dir, self.log)

    def _tool(self) -> list[str]:
        return self.tool

    def _pnpm_store(self) -> str:
        return os.path.join(self.cache, "pnpm-store")

    def _berry(self) -> bool:
        major = self.manager_version.split(".")[0]
        return self.manager == "yarn" and major.isdigit() and int(major) >= 2

    def _berry_lockfile(self) -> bool:
        text = _read(os.path.join(self.dir, "yarn.lock")) or ""
        return "__metadata:" in text

    def _cache_directories(self) -> list[str]:
        dirs = self.pkg.get("cacheDirectories") or self.pkg.get("cache_directories") or []
        if not isinstance(dirs, list):
            return []
        safe = []
        for d in dirs:
            if isinstance(d, str) and d and not os.path.isabs(d) and ".." not in d.split("/"):
                safe.append(d.strip("/"))
        return safe

    def _registry(self) -> str:
        registry = self.env.get("NPM_CONFIG_REGISTRY") or self.env.get("npm_config_registry")
        return registry or self._output(["npm", "config", "get", "registry"])

    def _output(self, argv: list[str]) -> str:
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env or None,
                              cwd=self.dir)  # fmt: skip
        if proc.returncode != 0:
            self.log.die("`%s` failed: %s" % (" ".join(argv), proc.stderr.strip()))
        return proc.stdout.strip()

    def _satisfies(self, version: str, requirement: str) -> bool | None:
        """npm's bundled semver decides; None when the range is not valid semver."""
        npm = shutil.which("npm", path=self.env.get("PATH"))
        semver = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(npm or ""))),
                              "node_modules", "semver")  # fmt: skip
        script = (
            "const s = require(process.argv[1]); const r = s.validRange(process.argv[3]);"
            "process.exit(r === null ? 2 : s.satisfies(process.argv[2], r) ? 0 : 1)"
        )
        proc = subprocess.run(["node", "-e", script, semver, version, requirement],
                              capture_output=True, text=True)  # fmt: skip
        if proc.returncode not in (0, 1, 2):
            self.log.die("Could not check engines with npm's semver: %s" % proc.stderr.strip())
        return None if proc.returncode == 2 else proc.returncode == 0


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def _env_dir_vars(env_dir: str) -> dict[str, str]:
    out = {}
    if os.path.isdir(env_dir):
        for name in sorted(os.listdir(env_dir)):
            text = _read(os.path.join(env_dir, name))
            if text is not None:
                out[name] = text
    return out


def main(argv: list[str]) -> None:
    build_dir, cache_dir, env_dir = (os.path.abspath(a) for a in argv[1:4])
    if not nodejs_lang.package_json(build_dir) and os.path.isfile(
        os.path.join(build_dir, "package.json")
    ):
        Log().die("package.json is not valid JSON.")
    build = Build(build_dir, cache_dir, env_dir, Log())
    build.runtime_environment()
    build.binaries()
    build.choose_manager()
    build.restore_cache()
    build.install_manager()
    build.install()
    build.build_scripts()
    build.save_cache()
    build.prune()
    build.finish()


if __name__ == "__main__":
    main(sys.argv)
