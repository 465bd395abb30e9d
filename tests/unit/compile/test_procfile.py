import pytest

from spruce.compile.procfile import ProcfileError, parse_procfile


def test_types_commands_comments_and_blank_lines() -> None:
    text = "# processes\nweb: gunicorn app:app --bind 0.0.0.0:$PORT\n\n  worker:   python worker.py  \n"
    assert parse_procfile(text) == {
        "web": "gunicorn app:app --bind 0.0.0.0:$PORT",
        "worker": "python worker.py",
    }


def test_colon_is_optional_and_names_allow_dash_underscore() -> None:
    assert parse_procfile("release_phase-1 ./migrate.sh\n") == {"release_phase-1": "./migrate.sh"}


def test_later_duplicate_wins_and_crlf() -> None:
    assert parse_procfile("web: a\r\nweb: b\r\n") == {"web": "b"}


def test_command_keeps_inner_colons_and_hashes() -> None:
    assert parse_procfile("web: echo 'a: b # c'") == {"web": "echo 'a: b # c'"}


@pytest.mark.parametrize(
    "line",
    ["web.1: run", "web:run-without-space", ": nothing", "wéb: x"],
)
def test_bad_lines_are_reported_with_their_number(line: str) -> None:
    with pytest.raises(ProcfileError) as err:
        parse_procfile("web: ok\n" + line + "\n")
    assert "line 2" in str(err.value)


def test_type_without_command() -> None:
    with pytest.raises(ProcfileError, match="line 1"):
        parse_procfile("web:\n")


def test_optional_colon_follows_herokus_regex_literally() -> None:
    # "my app: run" matches Heroku's regex as type "my" with command "app: run".
    assert parse_procfile("my app: run") == {"my": "app: run"}
