"""``torchci validate --tree``: the dry sandbox holds a real checkout's layout (names and
modes, empty files), so test.sh and the plugin are compared on that layout. The script is
the validator's toy (tests/validator_fixture/ci): its ``toy_tree`` reads the checkout by
a find pipeline split into words, a for-glob loop and a ``[[ -x ]]`` filter."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from pytest_torchci.cli import main
from pytest_torchci.data.loader import load_suites
from pytest_torchci.data.model import Job
from pytest_torchci.validate._bashlib import PROGRAM_STUB
from pytest_torchci.validate.mirror import TreeMirror, apply_modes, scan_tree
from pytest_torchci.validate.run import validate_job
from pytest_torchci.validate.trace import trace_job

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("bash", "find", "sed", "sort", "tr", "basename")),
    reason="needs bash, find, sed, sort, tr and basename",
)

FIXTURE = Path(__file__).parent.parent / "validator_fixture"
TEST_SH = FIXTURE / "ci" / "test.sh"
TREE_JOB = Job("linux-py3-cpu", "tree")

FILE, EXE, DIR, XDIR = 0o644, 0o755, "dir", "xdir"
LAYOUT: tuple[tuple[str, int | str], ...] = (
    ("test/toy_tree/test_a.py", FILE),
    ("test/toy_tree/test_b 2.py", FILE),  # one file; bash's words: toy_tree/test_b and 2
    ("test/toy_tree/test_[x].py", FILE),
    ("test/toy_tree/test_é.py", FILE),
    ("test/toy_tree/sub/test_deep.py", FILE),
    ("test/toy_tree/helper.py", FILE),
    ("test/toy_native/test_n1.py", FILE),
    ("test/toy_native/test_n 2.py", FILE),
    ("test/toy_native/test_B.py", FILE),
    ("test/toy_native/.test_hidden.py", FILE),
    ("build/bin/toy_a", EXE),
    ("build/bin/toy_b c", EXE),
    ("build/bin/toy_plain", FILE),
    ("build/bin/toy_dir", DIR),  # searchable: [[ -x ]] holds
    ("build/bin/toy_closed", XDIR),
    ("build/bin/other", EXE),
    ("dist/toy-1.0 x.whl", FILE),  # the prelude's wheel; "$(echo dist/*.whl)" keeps it whole
    (".git/objects/ab", FILE),  # left out by default
    ("test/__pycache__/x.pyc", FILE),
)


def build_checkout(root: Path) -> Path:
    for rel, kind in LAYOUT:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == DIR:
            path.mkdir()
        elif kind == XDIR:
            path.mkdir()
            path.chmod(0o644)
        else:
            path.write_text("contents that the mirror leaves out\n")
            path.chmod(int(kind))
    (root / "build/bin/toy_link").symlink_to("toy_a")
    (root / "build/bin/toy_gone").symlink_to("missing")
    return root


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return build_checkout(tmp_path / "checkout")


def validate(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """``torchci validate --test-sh TEST_SH ARGS`` in this process, as a completed process
    (the entry points themselves: test_cli.py)."""
    code = main(["validate", "--test-sh", str(TEST_SH), *args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


def _commands(checkout: Path | None) -> list[list[str]]:
    tree = TreeMirror(scan_tree(checkout)) if checkout else None
    trace = trace_job(TEST_SH, TREE_JOB, tree=tree)
    return [c["argv"] for c in trace.commands if c["argv"][:2] == ["python", "test/run_test.py"]]


def test_the_trace_reads_the_mirrored_layout(checkout: Path) -> None:
    finds, globs, *cpp = _commands(checkout)
    assert finds[finds.index("toy_tree/test_b") + 1] == "2"  # bash split the name
    assert "toy_tree/sub/test_deep" in finds and "toy_tree/helper" not in finds
    assert globs[3:] == ["toy_native/test_B", "toy_native/test_n 2", "toy_native/test_n1"]
    closed = ["cpp/toy_closed"] if os.access(checkout / "build/bin/toy_closed", os.X_OK) else []
    assert [c[-1] for c in cpp] == [
        "cpp/toy_a", "cpp/toy_b c", *closed, "cpp/toy_dir", "cpp/toy_link",
    ]  # fmt: skip
    # The programs found by find, run by their paths, are recorded as run (./NAME): the
    # mirrored executables hold a recording stub. "toy_b c" split into two words that
    # name nothing; bash cannot run the folder toy_dir.
    trace = trace_job(TEST_SH, TREE_JOB, tree=TreeMirror(scan_tree(checkout)))
    programs = sorted(c["argv"] for c in trace.commands if c["argv"][0].startswith("./"))
    assert programs == [
        ["./toy_a", "--xml=out/toy_a.xml"],
        ["./toy_link", "--xml=out/toy_link.xml"],
    ]
    assert {c["cwd"] for c in trace.commands if c["argv"][0].startswith("./")} == {"build/bin"}
    # Without the tree, the same lines see an empty checkout: nothing found, the literal glob.
    finds, globs, *cpp = _commands(None)
    assert finds == ["python", "test/run_test.py", "--include", "--verbose"]
    assert globs[3:] == ["toy_native/test_*"] and cpp == []


def test_validator_agrees_on_the_tree(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proc = validate(
        capsys,
        "--suites", str(FIXTURE / "suites"), "--build-env", "linux-py3-cpu", "--config", "tree",
        "--tree", str(checkout), "-v",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "agree   linux-py3-cpu | tree | 1/1" in proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("tree: ")]
    assert len(lines) == 1
    # .git/objects/ab and test/__pycache__/x.pyc left out
    mirrored = sum(1 for _, kind in LAYOUT if isinstance(kind, int)) - 2
    assert f"tree: mirrored {mirrored} files" in lines[0]
    assert "left out: " in lines[0] and ".git" in lines[0]


def test_every_toy_job_agrees_on_the_tree_in_parallel(
    checkout: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(
        "build_environment,test_config,shard,num_shards\n"
        "linux-py3-cpu,tree,1,1\nlinux-cuda12-py3,tree,1,1\nlinux-py3-cpu,smoke,1,1\n"
        "linux-cuda12-py3,default,1,2\nlinux-py3-cpu,bench,1,1\n"
    )
    proc = validate(
        capsys,
        "--suites", str(FIXTURE / "suites"), "--jobs", str(jobs), "--tree", str(checkout),
        "-n", "3",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 agree, 0 differ" in proc.stdout
    assert "laid out in 5 sandboxes" in proc.stderr


def edited_port(tmp_path: Path, old: str, new: str, file: str = "toy.toml") -> Path:
    """A copy of the fixture's suites with one text of one of its files replaced."""
    suites = tmp_path / "suites"
    shutil.copytree(FIXTURE / "suites", suites)
    edited = suites / file
    assert old in edited.read_text()
    edited.write_text(edited.read_text().replace(old, new))
    return suites


def test_a_plan_that_differs_on_the_tree_is_reported(
    checkout: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A port that tests ``-f`` where the script tests ``-x``: the same on an empty
    checkout, not on one with a searchable folder among the binaries."""
    suites = edited_port(
        tmp_path,
        '"@executables(build/bin, toy_*, cpp/)"',
        '"@executables(build/bin, toy_*, cpp/, -f)"',
    )
    data = load_suites(suites)
    assert validate_job(TEST_SH, data, TREE_JOB).agree  # the empty sandbox cannot tell
    result = validate_job(TEST_SH, data, TREE_JOB, tree=TreeMirror(scan_tree(checkout)))
    assert not result.agree
    assert result.levels["commands"] is False
    assert "cpp/toy_closed" in result.differences["commands"] or (
        "cpp/toy_dir" in result.differences["commands"]
    )
    proc = validate(
        capsys,
        "--suites", str(suites), "--build-env", "linux-py3-cpu", "--config", "tree",
        "--tree", str(checkout),
    )  # fmt: skip
    assert proc.returncode == 1
    assert "1 differ" in proc.stdout


def test_a_program_run_differently_is_reported(checkout: Path, tmp_path: Path) -> None:
    """The programs a script runs by path are compared too: a port that drops their
    argument differs on the tree (and agrees on the empty sandbox, where none is found)."""
    run = '{ run = ["$prog", "--xml=out/@strip($prog, ./).xml"] }'
    data = load_suites(edited_port(tmp_path, run, '{ run = ["$prog"] }'))
    assert validate_job(TEST_SH, data, TREE_JOB).agree
    result = validate_job(TEST_SH, data, TREE_JOB, tree=TreeMirror(scan_tree(checkout)))
    assert result.levels["commands"] is False
    assert "./toy_a" in result.differences["commands"]


def test_the_prelude_s_install_of_the_tree_s_wheel_is_compared(
    checkout: Path, tmp_path: Path
) -> None:
    """The prelude's ``pip install "$(echo dist/*.whl)[extra]"`` of a sanitized build is
    compared too: the same on the tree; a port that loses the extra differs."""
    job = Job("linux-py3-sanitized", "tree")
    tree = TreeMirror(scan_tree(checkout))
    trace = trace_job(TEST_SH, job, tree=tree)
    installs = [c["argv"] for c in trace.commands if c["argv"][1:4] == ["-m", "pip", "install"]]
    assert installs == [["python", "-m", "pip", "install", "dist/toy-1.0 x.whl[toy-extra]"]]
    assert validate_job(TEST_SH, load_suites(FIXTURE / "suites"), job, tree=tree).agree
    wheel = '"@glob(dist/*.whl)[toy-extra]"'
    port = edited_port(tmp_path, wheel, '"@glob(dist/*.whl)"', "prelude.toml")
    result = validate_job(TEST_SH, load_suites(port), job, tree=tree)
    assert result.levels["commands"] is False
    assert "toy-extra" in result.differences["commands"]


def test_a_mirrored_program_that_is_sourced_does_nothing(checkout: Path, tmp_path: Path) -> None:
    """A script may source a file of the checkout: the stub then returns at once, as the
    empty file did, and records nothing."""
    target = tmp_path / "sandbox"
    apply_modes(TreeMirror(scan_tree(checkout)).materialize(target, PROGRAM_STUB))
    records = tmp_path / "trace"
    (records / "cmds").mkdir(parents=True)
    script = 'source build/bin/toy_a; echo "still here"; ./build/bin/toy_a one "t w o"'
    proc = subprocess.run(
        ["bash", "-c", script], cwd=target, capture_output=True, text=True, check=False,
        env={**os.environ, "TORCHCI_TRACE_DIR": str(records)},
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stdout == "still here\n", proc.stderr
    (argv_file,) = (records / "cmds").glob("*.argv")
    fields = argv_file.read_bytes().split(b"\0")[:-1]
    assert fields[2:] == [str(target).encode(), b"./build/bin/toy_a", b"one", b"t w o"]
    assert (target / "build/bin/toy_plain").read_text() == ""  # not executable: empty


def _layout(root: Path) -> dict[str, tuple[str, int | str]]:
    out: dict[str, tuple[str, int | str]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            else:
                kind = "dir" if stat.S_ISDIR(st.st_mode) else f"file:{st.st_size}"
                out[rel] = (kind, stat.S_IMODE(st.st_mode))
    return out


@pytest.mark.parametrize("link", [True, False], ids=["hard-links", "one-file-each"])
def test_mirror_keeps_names_modes_and_links_not_contents(
    checkout: Path, tmp_path: Path, link: bool
) -> None:
    (checkout / "build/bin/abs_link").symlink_to(checkout / "build/bin/toy_a")
    mirror = TreeMirror(scan_tree(checkout, [".git", "__pycache__", "test/toy_native"]), link=link)
    target = tmp_path / "sandbox" / "checkout"
    apply_modes(mirror.materialize(target))
    want = {
        rel: (kind.replace(f":{len('contents that the mirror leaves out') + 1}", ":0"), mode)
        if kind.startswith("file")
        else (kind, mode)
        for rel, (kind, mode) in _layout(checkout).items()
        if not rel.startswith((".git", "test/__pycache__", "test/toy_native"))
    }
    want["build/bin/abs_link"] = ("link", str(target / "build/bin/toy_a"))  # into the sandbox
    got = _layout(target)
    (target / "build/bin/toy_closed").chmod(0o755)
    assert got == want
    assert len(mirror.copy_seconds) == 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "no such folder"),
        (lambda p: (p / "a-file").write_text("") or p / "a-file", "not a folder"),
    ],
    ids=["missing", "not-a-folder"],
)
def test_bad_tree(
    tmp_path: Path, make: object, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    proc = validate(capsys, "--config", "tree", "--tree", str(path))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: --tree {path}: {message}"


def test_tree_is_for_dry_mode(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proc = validate(capsys, "--config", "tree", "--tree", str(checkout), "--real-run")
    assert proc.returncode == 2
    assert "--tree is for dry mode" in proc.stderr
    assert "Traceback" not in proc.stderr
