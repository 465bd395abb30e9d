"""Rules of Heroku's PHP buildpack that Spruce's heroku/php follows (python3 stdlib only).

* An app has `composer.json` or `index.php` at its root.
* PHP: `require.php` in composer.json is a Composer version constraint (`^8.1`, `~8.2.0`,
  `>=8.0 <8.4`, `8.1.* || 8.2.*`) that the platform's PHP (apt package php-cli) must satisfy;
  otherwise the build fails naming both. Each `require.ext-NAME` must be loaded by that PHP
  (`php -m`), else the build names the apt package (php-NAME).
* A composer.json that requires packages needs its composer.lock; `composer install --no-dev
  --prefer-dist --optimize-autoloader --no-interaction` installs them with the platform's
  Composer (apt package composer), then the `compile` script runs if composer.json has one.
  Packages from path repositories or an already vendored `vendor/` need no network; packages
  from Packagist or VCS repositories do.
* `heroku-php-apache2 [DOCROOT]` and `heroku-php-nginx [DOCROOT]`, Heroku's boot commands, are
  on PATH in the dynos; Spruce's serve DOCROOT with PHP's built-in web server (`php -S`, with
  PHP_CLI_SERVER_WORKERS from WEB_CONCURRENCY), not Apache or nginx. Without a Procfile the
  web process is `heroku-php-apache2`.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from lang_support import BuildError, version_tuple

INSTALL_ARGS = ("install", "--no-dev", "--prefer-dist", "--optimize-autoloader", "--no-interaction")
DEFAULT_WEB = "heroku-php-apache2"
BOOT_COMMANDS = ("heroku-php-apache2", "heroku-php-nginx")


def read_composer_json(app_dir: str) -> dict[str, Any]:
    path = os.path.join(app_dir, "composer.json")
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise BuildError(f"composer.json is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BuildError("composer.json must hold a JSON object")
    return data


def requirements(composer: dict[str, Any]) -> dict[str, str]:
    req = composer.get("require") or {}
    if not isinstance(req, dict):
        raise BuildError("composer.json `require` must be an object")
    return {str(k): str(v) for k, v in req.items()}


def _pad(parts: tuple[int, ...]) -> tuple[int, int, int]:
    p = (*parts, 0, 0, 0)
    return (p[0], p[1], p[2])


def _one(term: str, have: tuple[int, int, int]) -> bool:
    """One constraint term of Composer's syntax against a version."""
    term = term.strip().split("@")[0].removeprefix("v")
    if term in ("*", "", "x"):
        return True
    match = re.fullmatch(r"(\^|~|>=|<=|>|<|!=|==|=)?\s*v?([0-9][0-9.*x]*)(?:-[A-Za-z0-9.]+)?", term)
    if not match:
        raise BuildError(f"cannot read the version constraint {term!r} in composer.json")
    op, text = match.group(1) or "", match.group(2).rstrip(".")
    if "*" in text or "x" in text:
        fixed = tuple(int(p) for p in text.split(".") if p not in ("*", "x"))
        return have[: len(fixed)] == fixed
    parts = tuple(int(p) for p in text.split(".") if p)
    want = _pad(parts)
    if op == "^":
        # ^1.2.3: >=1.2.3 <2; ^0.3: >=0.3 <0.4
        first = next((i for i, p in enumerate(parts) if p != 0), len(parts) - 1)
        upper = list(parts[: first + 1])
        upper[-1] += 1
        return want <= have < _pad(tuple(upper))
    if op == "~":
        # ~1.2 : >=1.2 <2 ; ~1.2.3 : >=1.2.3 <1.3
        keep = list(parts[:-1]) if len(parts) > 1 else list(parts)
        keep[-1] += 1
        return want <= have < _pad(tuple(keep))
    if op in (">=",):
        return have >= want
    if op == ">":
        return have > want
    if op == "<=":
        return have <= want
    if op == "<":
        return have < want
    if op == "!=":
        return have != want
    return have == want  # exact, as Composer reads it: 8.2 is 8.2.0


def satisfies(constraint: str, version: str) -> bool:
    """Whether `version` (like 8.2.36) satisfies a Composer constraint: `||` separates
    alternatives, a comma or space separates terms that must all hold, `A - B` is a range."""
    have = _pad(version_tuple(version))
    for alternative in re.split(r"\s*\|\|?\s*", constraint.strip()):
        hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", alternative)
        if hyphen:
            low, high = version_tuple(hyphen.group(1)), version_tuple(hyphen.group(2))
            if len(high) >= 3:
                within = have <= _pad(high)
            else:  # 8.0 - 8.2 means < 8.3
                within = have < _pad((*high[:-1], high[-1] + 1))
            if _pad(low) <= have and within:
                return True
            continue
        joined = re.sub(r"(\^|~|>=|<=|>|<|!=|==|=)\s+", r"\1", alternative)
        terms = [t for t in re.split(r"[\s,]+", joined) if t]
        if all(_one(t, have) for t in terms):
            return True
    return False


def check_php(composer: dict[str, Any], installed: str) -> str | None:
    wanted = requirements(composer).get("php")
    if not wanted:
        return f"composer.json has no require.php: using the platform's PHP {installed}"
    if not satisfies(wanted, installed):
        raise BuildError(
            f"This app needs PHP {wanted} (composer.json require.php) but the platform's PHP "
            f"is {installed}.\nThe platform operator installs a PHP that satisfies it (apt "
            "package php-cli of a distribution release that has one, first on PATH),\n"
            "or change require.php."
        )
    return None


def missing_extensions(composer: dict[str, Any], loaded: set[str]) -> list[str]:
    names = [k[4:].lower() for k in requirements(composer) if k.lower().startswith("ext-")]
    return [n for n in names if n not in loaded and n.replace("-", "_") not in loaded]


def loaded_modules(php_m_output: str) -> set[str]:
    return {
        line.strip().lower()
        for line in php_m_output.splitlines()
        if line.strip() and not line.startswith("[")
    }


def needs_lock(composer: dict[str, Any]) -> bool:
    return any(
        k != "php" and not k.startswith(("ext-", "lib-", "composer-")) and k != "composer"
        for k in requirements(composer)
    )


def has_compile_script(composer: dict[str, Any]) -> bool:
    scripts = composer.get("scripts")
    return isinstance(scripts, dict) and bool(scripts.get("compile"))


def bin_dir(composer: dict[str, Any]) -> str:
    config = composer.get("config")
    if isinstance(config, dict) and isinstance(config.get("bin-dir"), str):
        return str(config["bin-dir"])
    return "vendor/bin"


def default_process_types() -> dict[str, str]:
    return {"web": DEFAULT_WEB}


BOOT_SCRIPT = """#!/usr/bin/env bash
# {name} [options] [DOCROOT]: Heroku's PHP boot command, served by Spruce with PHP's built-in
# web server (php -S) on $PORT. Apache/nginx/PHP-FPM options (-C, -F, -i, -l) are ignored.
docroot=.
while [ $# -gt 0 ]; do
  case "$1" in
    -C|-F|-i|-l|--httpd-config|--fpm-config|--php-config|--log) shift 2 ;;
    -*) shift ;;
    *) docroot="$1"; shift ;;
  esac
done
if [ ! -d "$docroot" ]; then
  echo "{name}: document root '$docroot' does not exist" >&2
  exit 1
fi
export PHP_CLI_SERVER_WORKERS="${{PHP_CLI_SERVER_WORKERS:-${{WEB_CONCURRENCY:-2}}}}"
echo "{name}: serving $docroot with PHP's built-in web server on port ${{PORT:-5000}}" >&2
exec php -S "0.0.0.0:${{PORT:-5000}}" -t "$docroot"
"""


def boot_script(name: str) -> str:
    return BOOT_SCRIPT.format(name=name)
