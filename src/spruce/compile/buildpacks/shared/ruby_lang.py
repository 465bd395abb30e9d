"""Rules of Heroku's Ruby buildpack that Spruce's heroku/ruby follows (python3 stdlib only).

* An app has a `Gemfile`; `Gemfile.lock` is required (Heroku refuses to build without it).
* Ruby: the lock's `RUBY VERSION`. Spruce builds with the platform's Ruby (apt package ruby):
  another major.minor release fails the build naming both; another patch release of the same
  minor is used with a warning. Without RUBY VERSION the platform's Ruby is used.
* Bundler: the lock's `BUNDLED WITH` major version must be the platform's Bundler's (apt
  package ruby-bundler); Heroku also picks Bundler by major version.
* `bundle install` into vendor/bundle without the development and test groups (BUNDLE_WITHOUT
  overrides), in deployment (frozen) mode. Gems in `vendor/cache` install with `--local`: no
  network. Without them gems come from the Gemfile's sources (network needed).
* `rake assets:precompile` runs when the Rakefile defines it.
* Default processes: Rails `web: bin/rails server -p ${PORT:-5000} -e $RAILS_ENV`, a Rack app
  (config.ru) `web: bundle exec rackup config.ru -p ${PORT:-5000}`, plus `rake` and `console`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from lang_support import BuildError, version_tuple

BUNDLE_WITHOUT_DEFAULT = "development:test"


@dataclass
class Lockfile:
    ruby: str = ""  # like 3.1.2 (the p-level dropped)
    bundled_with: str = ""
    gems: dict[str, str] = field(default_factory=dict)  # name -> version, from GEM specs


def read_lockfile(app_dir: str) -> Lockfile:
    path = os.path.join(app_dir, "Gemfile.lock")
    if not os.path.isfile(path):
        raise BuildError(
            "Gemfile.lock required. Please check it in.\n"
            "Run `bundle install` (or `bundle lock`) and commit Gemfile.lock."
        )
    with open(path, encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    return parse_lockfile(text)


def parse_lockfile(text: str) -> Lockfile:
    lock = Lockfile()
    section = ""
    for line in text.splitlines():
        if line and not line[0].isspace():
            section = line.strip()
            continue
        stripped = line.strip()
        if not stripped:
            continue
        if section == "RUBY VERSION":
            match = re.match(r"ruby\s+(\d+\.\d+\.\d+)", stripped)
            if match:
                lock.ruby = match.group(1)
        elif section == "BUNDLED WITH":
            lock.bundled_with = stripped
        elif section in ("GEM", "PATH", "GIT"):
            # specs are indented four spaces: `    rack (3.0.8)`; their deps six.
            match = re.match(r"^    ([A-Za-z0-9_.-]+) \(([^)]+)\)$", line)
            if match:
                lock.gems[match.group(1)] = match.group(2).split("-")[0]
    return lock


def check_ruby(lock: Lockfile, installed: str) -> str | None:
    """A warning, None, or BuildError for the lock's Ruby against the installed one."""
    if not lock.ruby:
        return (
            f"No Ruby version in Gemfile.lock (RUBY VERSION): using the platform's Ruby "
            f'{installed}.\nDeclare one with `ruby "{installed}"` in the Gemfile and run '
            "`bundle update --ruby`."
        )
    want, have = version_tuple(lock.ruby), version_tuple(installed)
    if want[:2] != have[:2]:
        raise BuildError(
            f"This app needs Ruby {lock.ruby} (Gemfile.lock RUBY VERSION) but the platform's "
            f"Ruby is {installed}.\nThe platform operator installs that Ruby (apt package "
            f"ruby of a distribution release that has {'.'.join(map(str, want[:2]))}, first "
            "on PATH),\nor use the installed Ruby in the Gemfile and Gemfile.lock."
        )
    if want != have:
        return (
            f"Ruby {lock.ruby} requested (Gemfile.lock): using the platform's Ruby {installed} "
            "of the same minor release"
        )
    return None


def check_bundler(lock: Lockfile, installed: str) -> str | None:
    if not lock.bundled_with:
        return None
    want, have = version_tuple(lock.bundled_with), version_tuple(installed)
    if want[:1] != have[:1]:
        raise BuildError(
            f"Gemfile.lock was written by Bundler {lock.bundled_with} (BUNDLED WITH) but the "
            f"platform's Bundler is {installed}.\nThe platform operator installs Bundler "
            f"{want[0]}.x (apt package ruby-bundler), or re-lock with "
            f"`bundle _{installed}_ lock`."
        )
    if want != have:
        return f"Gemfile.lock BUNDLED WITH {lock.bundled_with}: using the platform's Bundler {installed}"
    return None


def vendored_gems(app_dir: str) -> bool:
    cache = os.path.join(app_dir, "vendor", "cache")
    return os.path.isdir(cache) and any(n.endswith(".gem") for n in os.listdir(cache))


def bundle_config(without: str) -> str:
    """`.bundle/config` for the build and for `bundle exec` in the dynos (relative paths)."""
    return (
        "---\n"
        'BUNDLE_PATH: "vendor/bundle"\n'
        'BUNDLE_BIN: "vendor/bundle/bin"\n'
        f'BUNDLE_WITHOUT: "{without}"\n'
        'BUNDLE_DEPLOYMENT: "true"\n'
        'BUNDLE_DISABLE_SHARED_GEMS: "true"\n'
    )


def install_argv(bundle: str, local: bool) -> list[str]:
    argv = [bundle, "install", "--jobs", "4", "--retry", "3"]
    return argv + ["--local"] if local else argv


def is_rails(lock: Lockfile) -> bool:
    return "railties" in lock.gems


def default_process_types(app_dir: str, lock: Lockfile) -> dict[str, str]:
    types: dict[str, str] = {}
    if is_rails(lock):
        types["web"] = "bin/rails server -p ${PORT:-5000} -e $RAILS_ENV"
        types["console"] = "bin/rails console"
    elif os.path.isfile(os.path.join(app_dir, "config.ru")):
        types["web"] = "bundle exec rackup config.ru -p ${PORT:-5000}"
        types["console"] = "bundle exec irb"
    else:
        types["console"] = "bundle exec irb"
    types["rake"] = "bundle exec rake"
    return types


def config_vars(lock: Lockfile) -> dict[str, str]:
    out = {"RACK_ENV": "production"}
    if is_rails(lock):
        out.update(
            RAILS_ENV="production",
            RAILS_LOG_TO_STDOUT="enabled",
            RAILS_SERVE_STATIC_FILES="enabled",
        )
    return out
