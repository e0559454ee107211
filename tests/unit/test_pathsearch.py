"""find_program: the file a bare command name runs, as PATH lookup (and bash) finds it."""

from __future__ import annotations

import os
from pathlib import Path

from pytest_torchci.run.pathsearch import find_program


def program(folder: Path, name: str, mode: int = 0o755) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n")
    path.chmod(mode)
    return path


def test_the_first_executable_file_on_path_wins(tmp_path: Path) -> None:
    program(tmp_path / "a", "tool", 0o644)  # not executable: skipped
    (tmp_path / "b" / "tool").mkdir(parents=True)  # a folder: skipped
    wanted = program(tmp_path / "c", "tool")
    program(tmp_path / "d", "tool")
    path = os.pathsep.join(str(tmp_path / f) for f in "abcd")
    assert find_program("tool", path) == str(wanted)


def test_the_child_searches_itself_when_this_process_cannot_know(tmp_path: Path) -> None:
    program(tmp_path / "bin", "tool")
    absolute = str(tmp_path / "bin")
    assert find_program("./tool", absolute) is None  # a path: no search at all
    assert find_program("tool", f"bin{os.pathsep}{absolute}") is None  # from its own folder
    assert find_program("tool", f"{os.pathsep}{absolute}") is None  # "": its folder too
    assert find_program("missing", absolute) is None  # its search fails as it would


def test_a_kept_answer_is_searched_again_once_the_file_has_gone(tmp_path: Path) -> None:
    first = program(tmp_path / "a", "tool")
    second = program(tmp_path / "b", "tool")
    path = os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")])
    assert find_program("tool", path) == str(first)
    first.unlink()
    assert find_program("tool", path) == str(second)
    second.unlink()
    assert find_program("tool", path) is None
