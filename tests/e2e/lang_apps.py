"""Small Go, Ruby, Java and PHP apps whose dependencies are vendored, so they build offline.

Each app answers GET / with a greeting that comes from its one dependency, so a page that
shows the greeting proves the vendored dependency was installed and linked, not only that
the app's own file ran. The vendoring steps are the ones a user runs before pushing (`gem
build` + `bundle cache` layout, `mvn` into a local repository, `composer update`), with the
distribution's packages standing in for the registries this machine cannot reach.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

GREETING = "greetings from the vendored {lang} dependency"


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=300,
        env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, f"{argv} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


# -- Go: a module with vendor/ (go build -mod=vendor) ---------------------------------------
def go_app(root: Path) -> Path:
    return write(
        root,
        {
            "go.mod": """
                module example.com/hello-spruce

                // +heroku goVersion go1.19
                go 1.19

                require example.com/greet v1.0.0
            """,
            "vendor/modules.txt": """
                # example.com/greet v1.0.0
                ## explicit
                example.com/greet
            """,
            "vendor/example.com/greet/greet.go": f"""
                package greet

                func Hello() string {{ return "{GREETING.format(lang="Go")}" }}
            """,
            "main.go": """
                package main

                import (
                    "fmt"
                    "net/http"
                    "os"

                    "example.com/greet"
                )

                func main() {
                    http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
                        fmt.Fprint(w, greet.Hello())
                    })
                    if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {
                        panic(err)
                    }
                }
            """,
        },
    )


# -- Ruby: a gem in vendor/cache (bundle install --local) -----------------------------------
def ruby_app(root: Path, work: Path) -> Path:
    gem_src = write(
        work / "spruce_greeting",
        {
            "spruce_greeting.gemspec": """
                Gem::Specification.new do |s|
                  s.name = "spruce_greeting"
                  s.version = "1.0.0"
                  s.summary = "A greeting for Spruce's Ruby test app"
                  s.authors = ["Spruce"]
                  s.files = ["lib/spruce_greeting.rb"]
                  s.license = "MIT"
                end
            """,
            "lib/spruce_greeting.rb": f"""
                module SpruceGreeting
                  def self.hello = "{GREETING.format(lang="Ruby")}"
                end
            """,
        },
    )
    _run(["gem", "build", "spruce_greeting.gemspec"], gem_src)
    (root / "vendor" / "cache").mkdir(parents=True)
    shutil.copy(gem_src / "spruce_greeting-1.0.0.gem", root / "vendor" / "cache")
    ruby = _run(["ruby", "-e", "print RUBY_VERSION + 'p' + RUBY_PATCHLEVEL.to_s"], root)
    bundler = _run(["bundle", "--version"], root).split()[-1]
    return write(
        root,
        {
            "Gemfile": """
                source "https://rubygems.org"

                gem "spruce_greeting"
            """,
            "Gemfile.lock": f"""
                GEM
                  remote: https://rubygems.org/
                  specs:
                    spruce_greeting (1.0.0)

                PLATFORMS
                  ruby

                DEPENDENCIES
                  spruce_greeting

                RUBY VERSION
                   ruby {ruby}

                BUNDLED WITH
                   {bundler}
            """,
            "Procfile": "web: bundle exec ruby app.rb\n",
            "app.rb": """
                require "socket"
                require "spruce_greeting"

                server = TCPServer.new("0.0.0.0", Integer(ENV.fetch("PORT")))
                loop do
                  client = server.accept
                  while (line = client.gets) && line != "\\r\\n"; end
                  body = SpruceGreeting.hello
                  client.write "HTTP/1.1 200 OK\\r\\nContent-Length: #{body.bytesize}\\r\\n" \\
                               "Connection: close\\r\\n\\r\\n#{body}"
                  client.close
                end
            """,
        },
    )


# -- Java: a Maven project with a local repository in .m2/repository (mvn -o) ---------------
# Debian's Maven plugins (libmaven-*-plugin-java) fill /usr/share/maven-repo: the vendoring
# run resolves from there as the mirror of every remote repository.
DEBIAN_MAVEN_REPO = Path("/usr/share/maven-repo")
MAVEN_PLUGINS = {
    "maven-clean-plugin": "3.2.0",
    "maven-resources-plugin": "3.3.0",
    "maven-compiler-plugin": "3.10.1",
    "maven-surefire-plugin": "2.22.3",
    "maven-jar-plugin": "3.3.0",
    "maven-install-plugin": "3.1.0",
    "maven-dependency-plugin": "3.5.0",
}


def java_app(root: Path, work: Path) -> Path:
    # Maven adds plexus-utils 1.1 to a plugin that does not name plexus-utils itself, and
    # Debian only has 3.4.2: each plugin names it.
    plexus = (
        "<dependencies><dependency><groupId>org.codehaus.plexus</groupId>"
        "<artifactId>plexus-utils</artifactId><version>3.4.2</version></dependency></dependencies>"
    )
    # As Heroku's Java guide does: the runtime classpath is copied to target/dependency.
    copy = (
        "<executions><execution><id>copy-dependencies</id><phase>package</phase>"
        "<goals><goal>copy-dependencies</goal></goals>"
        "<configuration><includeScope>runtime</includeScope></configuration>"
        "</execution></executions>"
    )
    plugins = "\n".join(
        f"      <plugin><groupId>org.apache.maven.plugins</groupId>"
        f"<artifactId>{a}</artifactId><version>{v}</version>{plexus}"
        f"{copy if a == 'maven-dependency-plugin' else ''}</plugin>"
        for a, v in MAVEN_PLUGINS.items()
    )
    write(
        root,
        {
            "system.properties": "java.runtime.version=17\n",
            "Procfile": "web: java $JAVA_OPTS -cp target/classes:target/dependency/* com.example.Main\n",
            ".gitignore": "target/\n",
            "src/main/java/com/example/Main.java": f"""
                package com.example;

                import com.sun.net.httpserver.HttpServer;
                import java.net.InetSocketAddress;
                import java.nio.charset.StandardCharsets;
                import org.apache.commons.lang3.StringUtils;

                public class Main {{
                    public static void main(String[] args) throws Exception {{
                        int port = Integer.parseInt(System.getenv("PORT"));
                        HttpServer server = HttpServer.create(new InetSocketAddress(port), 0);
                        server.createContext("/", exchange -> {{
                            // Only commons-lang3 turns it the right way round.
                            byte[] body = StringUtils.reverse("{GREETING.format(lang="Java")[::-1]}")
                                .getBytes(StandardCharsets.UTF_8);
                            exchange.sendResponseHeaders(200, body.length);
                            exchange.getResponseBody().write(body);
                            exchange.close();
                        }});
                        server.start();
                    }}
                }}
            """,
        },
    )
    (root / "pom.xml").write_text(
        textwrap.dedent(
            """\
            <?xml version="1.0" encoding="UTF-8"?>
            <project xmlns="http://maven.apache.org/POM/4.0.0">
              <modelVersion>4.0.0</modelVersion>
              <groupId>com.example</groupId>
              <artifactId>hello</artifactId>
              <version>1.0</version>
              <packaging>jar</packaging>
              <properties>
                <maven.compiler.release>17</maven.compiler.release>
                <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
              </properties>
              <dependencies>
                <dependency>
                  <groupId>org.apache.commons</groupId>
                  <artifactId>commons-lang3</artifactId>
                  <version>3.12.0</version>
                </dependency>
              </dependencies>
              <build>
                <plugins>
            PLUGINS
                </plugins>
              </build>
            </project>
            """
        ).replace("PLUGINS", plugins)
    )
    settings = (
        write(
            work,
            {
                "mirror-settings.xml": f"""
                <settings>
                  <mirrors>
                    <mirror>
                      <id>central</id>
                      <mirrorOf>*</mirrorOf>
                      <url>file://{DEBIAN_MAVEN_REPO}</url>
                    </mirror>
                  </mirrors>
                </settings>
            """
            },
        )
        / "mirror-settings.xml"
    )
    # What `mvn dependency:go-offline` does for a user: fill the app's own local repository.
    _run(
        ["mvn", "-B", "-q", "-Dmaven.repo.local=.m2/repository", "-s", str(settings),
         "-DskipTests", "clean", "dependency:list", "install"],
        root,
    )  # fmt: skip
    shutil.rmtree(root / "target")
    # The local repository records where artifacts came from; a real mirror's name would be
    # here too. The app's own artifact is not a dependency.
    shutil.rmtree(root / ".m2" / "repository" / "com" / "example", ignore_errors=True)
    return root


# -- PHP: Composer with a path repository (no Packagist) ------------------------------------
def php_app(root: Path) -> Path:
    write(
        root,
        {
            "composer.json": """
                {
                  "name": "spruce/hello",
                  "require": {"php": ">=8.0", "ext-json": "*", "spruce/greeting": "1.0.0"},
                  "repositories": [
                    {"type": "path", "url": "packages/greeting", "options": {"symlink": false}},
                    {"packagist.org": false}
                  ]
                }
            """,
            "packages/greeting/composer.json": """
                {
                  "name": "spruce/greeting",
                  "version": "1.0.0",
                  "autoload": {"psr-4": {"Spruce\\\\Greeting\\\\": "src/"}}
                }
            """,
            "packages/greeting/src/Greeting.php": f"""
                <?php
                namespace Spruce\\Greeting;

                final class Greeting
                {{
                    public static function hello(): string
                    {{
                        return "{GREETING.format(lang="PHP")}";
                    }}
                }}
            """,
            "web/index.php": """
                <?php
                require __DIR__ . '/../vendor/autoload.php';
                echo \\Spruce\\Greeting\\Greeting::hello();
            """,
            "Procfile": "web: heroku-php-apache2 web/\n",
            ".gitignore": "vendor/\n",
        },
    )
    env = {"COMPOSER_HOME": str(root.parent / ".composer-home"), "COMPOSER_ALLOW_SUPERUSER": "1"}
    _run(["composer", "update", "--no-install", "--no-interaction", "--no-audit"], root, env)
    assert re.search(r'"name": "spruce/greeting"', (root / "composer.lock").read_text())
    return root
