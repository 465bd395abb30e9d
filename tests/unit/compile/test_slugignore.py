from pathlib import Path

from spruce.compile.slugignore import apply_slugignore


def make(root: Path, files: list[str]) -> None:
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)


def test_patterns(tmp_path: Path) -> None:
    make(
        tmp_path,
        ["app.py", "notes.md", "docs/guide.md", "docs/img/a.png", "src/tests/t.py", "tests/t.py",
         "src/x.log", "a/b/c/deep.psd", "keep/logs/x", "build/out.bin", "sub/build/keep.bin"],
    )  # fmt: skip
    (tmp_path / ".slugignore").write_text(
        "# design files\n*.md\n/tests\nsrc/*.log\n**/*.psd\n\n/build/\nlogs/\n"
    )
    removed = apply_slugignore(tmp_path)
    assert removed == [
        "a/b/c/deep.psd", "build", "docs/guide.md", "keep/logs", "notes.md", "src/x.log", "tests",
    ]  # fmt: skip
    assert (tmp_path / "src/tests/t.py").exists()  # "/tests" is anchored at the root
    assert (tmp_path / "sub/build/keep.bin").exists()
    assert (tmp_path / "docs/img/a.png").exists()
    assert (tmp_path / "app.py").exists()
    assert (tmp_path / ".slugignore").exists()


def test_no_slugignore(tmp_path: Path) -> None:
    make(tmp_path, ["a.md"])
    assert apply_slugignore(tmp_path) == []
    assert (tmp_path / "a.md").exists()


def test_directory_only_pattern_does_not_remove_files(tmp_path: Path) -> None:
    make(tmp_path, ["cache", "x/cache/y"])
    (tmp_path / ".slugignore").write_text("cache/\n")
    assert apply_slugignore(tmp_path) == ["x/cache"]
    assert (tmp_path / "cache").is_file()
