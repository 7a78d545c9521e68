"""Mutation testing of one module: mutate the real file in place, run its tests, restore.

Usage (from anywhere; the repository is this script's parent folder)::

    scripts/mutation MODULE_FILE [options] -- PYTEST_ARGS...

Each mutant is one small change to MODULE_FILE (an operator, a constant, a call name, a
removed statement or keyword argument, see ``Mutator``). It is written over the file
itself, so the editable install imports it whatever pyproject's package-dir mapping is
(mutmut 3 mutates a copy the install never imports); then
``python -m pytest -x -q PYTEST_ARGS`` runs in a fresh interpreter with a timeout. A
mutant is killed when the tests fail or time out, and survives when they pass. The file is
restored after every mutant and at exit (``finally``, SIGTERM and SIGHUP included), and
checked byte for byte against the original; a copy is kept under ``.mutation/`` while the
run lasts, so an interrupted run (SIGKILL) is noticed by the next one.

Before mutating, the tests run once on the unmodified file (they must pass), under a line
tracer that records which lines of MODULE_FILE they execute: a mutant whose statement
never runs survives without being run ("not run by the tests"). Lines marked
``# pragma: no mutate`` are left alone (for transcribed data tables); a pragma on the first
line of a statement covers the whole statement.

Prints one line per mutant, then the score (killed / mutants) and every survivor as
``FILE:LINE: change`` with its id; ``--only ID,...`` reruns chosen mutants and ``--list``
prints them without running anything.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PRAGMA = "pragma: no mutate"

COMPARE_SWAPS: dict[type[ast.cmpop], tuple[str, ...]] = {
    ast.Lt: ("<=", ">="),
    ast.LtE: ("<", ">"),
    ast.Gt: (">=", "<="),
    ast.GtE: (">", "<"),
    ast.Eq: ("!=",),
    ast.NotEq: ("==",),
    ast.Is: ("is not",),
    ast.IsNot: ("is",),
    ast.In: ("not in",),
    ast.NotIn: ("in",),
}
COMPARE_PATTERN = re.compile(r"<=|>=|==|!=|<|>|\bnot\s+in\b|\bis\s+not\b|\bin\b|\bis\b")
BINARY_SWAPS: dict[type[ast.operator], tuple[str, str]] = {
    # operator class: (its token, the token it becomes)
    ast.Add: ("+", "-"),
    ast.Sub: ("-", "+"),
    ast.Mult: ("*", "/"),
    ast.Div: ("/", "*"),
    ast.FloorDiv: ("//", "/"),
    ast.Mod: ("%", "//"),
    ast.Pow: ("**", "*"),
    ast.BitAnd: ("&", "|"),  # numpy's elementwise and/or on boolean arrays
    ast.BitOr: ("|", "&"),
}
NAME_SWAPS = {
    "floor": "ceil",
    "ceil": "floor",
    "min": "max",
    "max": "min",
    "minimum": "maximum",
    "maximum": "minimum",
    "amin": "amax",
    "amax": "amin",
    "nanmin": "nanmax",
    "nanmax": "nanmin",
    "argmin": "argmax",
    "argmax": "argmin",
    "any": "all",
    "all": "any",
}
# Statements whose removal (replaced by ``pass``) still leaves a program that runs.
REMOVABLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Raise, ast.If, ast.For)


@dataclass(frozen=True)
class Mutant:
    """One change to the source: bytes ``start:end`` become ``replacement``."""

    start: int
    end: int
    replacement: bytes
    line: int
    kind: str
    description: str
    stmt_lines: tuple[int, int]  # the lines whose execution means the mutant ran

    def apply(self, source: bytes) -> bytes:
        """Return the source with this mutant applied."""
        return source[: self.start] + self.replacement + source[self.end :]


class Mutator:
    """Collect the mutants of one module's source.

    Operators: comparisons (``<`` to ``<=`` and ``>=``, ``==`` to ``!=``, ``in`` to
    ``not in``...), arithmetic and bitwise (``+ -``, ``* /``, ``//`` to ``/``, ``& |``),
    boolean ``and``/``or`` and dropping ``not``, unary minus and ``~``, numeric constants
    (``n`` to ``n + 1``, ``0`` to ``1``, ``1`` to ``0``, ``x`` to ``-x`` except for subscript
    indices and ``axis=`` values, where it is mostly an alias), ``True``/``False``,
    call names (``floor``/``ceil``, ``min``/``max``, ``minimum``/``maximum``,
    ``any``/``all``, ``argmin``/``argmax``), removing a statement inside a function or
    class (assignment, expression, raise, if, for) and removing a keyword argument.
    Docstrings, annotations, f-strings and ``# pragma: no mutate`` lines are not mutated.
    """

    def __init__(self, source: bytes) -> None:
        self.source = source
        self.tree = ast.parse(source)
        self.line_starts = [0]
        for line in source.splitlines(keepends=True):
            self.line_starts.append(self.line_starts[-1] + len(line))
        lines = source.decode().splitlines()
        self.skip_lines = {i + 1 for i, text in enumerate(lines) if PRAGMA in text}
        self.positions = _positional_constants(self.tree)
        self.mutants: list[Mutant] = []

    def offset(self, line: int, col: int) -> int:
        """Return the byte offset of an AST (line, UTF-8 column) position."""
        return self.line_starts[line - 1] + col

    def start(self, node: Any) -> int:
        """Return the byte offset where ``node`` starts."""
        return self.offset(node.lineno, node.col_offset)

    def end(self, node: Any) -> int:
        """Return the byte offset where ``node`` ends."""
        return self.offset(node.end_lineno, node.end_col_offset)

    def text(self, start: int, end: int) -> str:
        """Return the source between two byte offsets."""
        return self.source[start:end].decode()

    def collect(self) -> list[Mutant]:
        """Return every mutant of the module, in source order, duplicates removed."""
        self._visit_body(self.tree.body, None, module_level=True)
        unique: dict[bytes, Mutant] = {}
        for mutant in sorted(self.mutants, key=lambda m: (m.start, m.end, m.description)):
            mutated = mutant.apply(self.source)
            if mutated == self.source or mutated in unique:
                continue
            try:
                compile(mutated, "<mutant>", "exec")
            except SyntaxError:
                continue
            unique[mutated] = mutant
        return list(unique.values())

    def add(
        self, start: int, end: int, new: str, kind: str, stmt: tuple[int, int], note: str = ""
    ) -> None:
        """Record a mutant replacing ``start:end`` by ``new``."""
        line = self.source.count(b"\n", 0, start) + 1
        if line in self.skip_lines:
            return
        old = " ".join(self.text(start, end).split())
        shown_old = old if len(old) <= 60 else old[:57] + "..."
        description = note or f"`{shown_old}` -> `{new}`"
        self.mutants.append(Mutant(start, end, new.encode(), line, kind, description, stmt))

    def _visit_body(self, body: list[ast.stmt], docstring_owner: Any, module_level: bool) -> None:
        for index, stmt in enumerate(body):
            if index == 0 and docstring_owner is not None and _is_docstring(stmt):
                continue
            if index == 0 and module_level and _is_docstring(stmt):
                continue
            self._visit_stmt(stmt, module_level)

    def _visit_stmt(self, stmt: ast.stmt, module_level: bool) -> None:
        first, last = stmt.lineno, stmt.end_lineno or stmt.lineno
        if first in self.skip_lines or isinstance(stmt, ast.Import | ast.ImportFrom):
            return
        if _is_type_checking(stmt):
            return
        header_end = _header_end(stmt)
        span = (first, header_end)
        if _removable(stmt) and not module_level:
            first_line = self.text(self.start(stmt), self.end(stmt)).splitlines()[0].strip()
            self.add(
                self.start(stmt),
                self.end(stmt),
                "pass",
                "statement",
                span,
                f"removed `{first_line[:60]}`",
            )
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            for expression in [*stmt.args.defaults, *stmt.args.kw_defaults, *stmt.decorator_list]:
                if expression is not None:
                    self._visit_expr(expression, span)
            self._visit_body(stmt.body, stmt, module_level=False)
            return
        if isinstance(stmt, ast.ClassDef):
            for expression in [*stmt.bases, *stmt.decorator_list]:
                self._visit_expr(expression, span)
            self._visit_body(stmt.body, stmt, module_level=False)
            return
        for name, value in ast.iter_fields(stmt):
            if name in ("annotation", "returns", "type_comment"):
                continue
            if isinstance(value, list):
                if value and isinstance(value[0], ast.stmt):
                    self._visit_body(value, None, module_level=False)
                    continue
                for item in value:
                    if isinstance(item, ast.expr):
                        self._visit_expr(item, span)
                    elif isinstance(item, ast.excepthandler | ast.withitem | ast.match_case):
                        self._visit_misc(item, span)
            elif isinstance(value, ast.expr):
                self._visit_expr(value, (first, last) if header_end == last else span)

    def _visit_misc(self, node: ast.AST, span: tuple[int, int]) -> None:
        for value in ast.iter_fields(node):
            field = value[1]
            if isinstance(field, ast.expr):
                self._visit_expr(field, span)
            elif isinstance(field, list) and field and isinstance(field[0], ast.stmt):
                self._visit_body(field, None, module_level=False)

    def _visit_expr(self, node: ast.expr, span: tuple[int, int]) -> None:
        if isinstance(node, ast.JoinedStr):
            return
        if isinstance(node, ast.Lambda):
            self._visit_expr(node.body, span)
            return
        self._mutate_expr(node, span)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self._visit_expr(child, span)
            elif isinstance(child, ast.keyword):
                self._visit_expr(child.value, span)
            elif isinstance(child, ast.comprehension):
                for part in (child.target, child.iter, *child.ifs):
                    self._visit_expr(part, span)

    def _gap_token(self, left: ast.AST, right: ast.AST, pattern: re.Pattern[str]) -> Iterator[int]:
        """Yield the byte offsets (start, end) of the first match between two nodes."""
        start, end = self.end(left), self.start(right)
        gap = self.text(start, end)
        cleaned = re.sub(r"#[^\n]*", lambda m: " " * len(m.group()), gap)
        match = pattern.search(cleaned)
        if match is None:
            return
        yield start + len(gap[: match.start()].encode())
        yield start + len(gap[: match.end()].encode())

    def _mutate_expr(self, node: ast.expr, span: tuple[int, int]) -> None:
        if isinstance(node, ast.Compare):
            left: ast.expr = node.left
            for op, right in zip(node.ops, node.comparators, strict=True):
                found = list(self._gap_token(left, right, COMPARE_PATTERN))
                if found:
                    for new in COMPARE_SWAPS[type(op)]:
                        self.add(found[0], found[1], new, "comparison", span)
                left = right
        elif isinstance(node, ast.BinOp) and type(node.op) in BINARY_SWAPS:
            token, new = BINARY_SWAPS[type(node.op)]
            found = list(self._gap_token(node.left, node.right, re.compile(re.escape(token))))
            if found:
                self.add(found[0], found[1], new, "arithmetic", span)
        elif isinstance(node, ast.BoolOp):
            new = "or" if isinstance(node.op, ast.And) else "and"
            pattern = re.compile(r"\b(and|or)\b")
            for left, right in zip(node.values, node.values[1:], strict=False):
                found = list(self._gap_token(left, right, pattern))
                if found:
                    self.add(found[0], found[1], new, "boolean", span)
        elif isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.UAdd):
            # Drop `not`, `-` or `~`, keeping the operand (and its parentheses) as written.
            kind = "boolean" if isinstance(node.op, ast.Not | ast.Invert) else "arithmetic"
            removed = self.text(self.start(node), self.start(node.operand)).strip()
            self.add(
                self.start(node),
                self.start(node.operand),
                "",
                kind,
                span,
                f"removed `{removed}` before `{ast.unparse(node.operand)[:50]}`",
            )
        elif isinstance(node, ast.Constant):
            self._mutate_constant(node, span)
        elif isinstance(node, ast.Name) and node.id in NAME_SWAPS and _loads(node):
            self.add(self.start(node), self.end(node), NAME_SWAPS[node.id], "call", span)
        elif isinstance(node, ast.Attribute) and node.attr in NAME_SWAPS:
            end = self.end(node)
            self.add(end - len(node.attr), end, NAME_SWAPS[node.attr], "call", span)
        if isinstance(node, ast.Call):
            self._remove_keywords(node, span)

    def _mutate_constant(self, node: ast.Constant, span: tuple[int, int]) -> None:
        value = node.value
        start, end = self.start(node), self.end(node)
        if isinstance(value, bool):
            self.add(start, end, str(not value), "constant", span)
        elif isinstance(value, int | float):
            candidates = [value + 1]
            if value == 0:
                candidates.append(1)
            if value == 1:
                candidates.append(0)
            # -x of an index or axis is mostly an alias (axis=-1 of a 2-D array is axis 1).
            if value != 0 and id(node) not in self.positions:
                candidates.append(-value)
            for new in dict.fromkeys(candidates):
                text = repr(type(value)(new))
                self.add(start, end, f"({text})" if new < 0 else text, "constant", span)

    def _remove_keywords(self, call: ast.Call, span: tuple[int, int]) -> None:
        items: list[Any] = sorted([*call.args, *call.keywords], key=self.start)
        for index, item in enumerate(items):
            if not isinstance(item, ast.keyword) or item.arg is None:
                continue
            if index > 0:
                start, end = self.end(items[index - 1]), self.end(item)
            elif len(items) > 1:
                start, end = self.start(item), self.start(items[1])
            else:
                start, end = self.start(item), self.end(item)
            shown = self.text(self.start(item), self.end(item))
            shown = " ".join(shown.split())[:60]
            self.add(start, end, "", "keyword", span, f"removed keyword `{shown}`")


def _positional_constants(tree: ast.AST) -> set[int]:
    """Return the ids of the constants that are subscript indices or ``axis=`` values."""
    found: set[int] = set()

    def collect(node: ast.AST | None) -> None:
        if node is None:
            return
        if isinstance(node, ast.Constant):
            found.add(id(node))
        elif isinstance(node, ast.UnaryOp):
            collect(node.operand)
        elif isinstance(node, ast.Tuple):
            for item in node.elts:
                collect(item)
        elif isinstance(node, ast.Slice):
            for part in (node.lower, node.upper, node.step):
                collect(part)

    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):
            collect(node.slice)
        elif isinstance(node, ast.keyword) and node.arg == "axis":
            collect(node.value)
    return found


def _is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _loads(node: ast.Name) -> bool:
    return isinstance(node.ctx, ast.Load)


def _removable(stmt: ast.stmt) -> bool:
    # A bare annotation (a dataclass field) is a declaration, not a statement that runs.
    if isinstance(stmt, ast.AnnAssign) and stmt.value is None:
        return False
    return isinstance(stmt, REMOVABLE) and not _is_docstring(stmt)


def _is_type_checking(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test)


def _header_end(stmt: ast.stmt) -> int:
    """Return the last line of a statement's header (the whole statement if simple)."""
    body = getattr(stmt, "body", None)
    if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
        return max(stmt.lineno, body[0].lineno - 1)
    return stmt.end_lineno or stmt.lineno


# --------------------------------------------------------------------------- running


TRACE_SCRIPT = """
import json, sys, threading
target, out = sys.argv[1], sys.argv[2]
lines = set()
def local(frame, event, arg):
    if event == "line":
        lines.add(frame.f_lineno)
    return local
def tracer(frame, event, arg):
    if frame.f_code.co_filename == target:
        lines.add(frame.f_lineno)
        return local
    return None
sys.settrace(tracer)
threading.settrace(tracer)
import pytest
code = pytest.main(sys.argv[3:])
sys.settrace(None)
modules = {name: getattr(module, "__file__", None) for name, module in sys.modules.items()}
with open(out, "w") as handle:
    json.dump({"code": int(code), "lines": sorted(lines), "modules": modules}, handle)
"""


class FileGuard:
    """Own MODULE_FILE while mutants are written over it, and always restore it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.original = path.read_bytes()
        self.stat = path.stat()
        relative = path.relative_to(REPO) if path.is_relative_to(REPO) else Path(path.name)
        self.backup = REPO / ".mutation" / f"{relative}.orig"

    def __enter__(self) -> FileGuard:
        self.backup.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.backup, "xb") as handle:
                handle.write(self.original)
        except FileExistsError:
            raise SystemExit(
                f"mutation: {self.backup} exists: another run is mutating {self.path}, or one "
                f"was killed and {self.path} may still hold a mutant. Compare the two, restore "
                f"with `cp {self.backup} {self.path}`, then delete {self.backup}."
            ) from None
        return self

    def write(self, content: bytes) -> None:
        """Write ``content`` over the file."""
        self.path.write_bytes(content)

    def restore(self) -> None:
        """Put the original bytes and modification time back."""
        if self.path.read_bytes() != self.original:
            self.path.write_bytes(self.original)
        os.utime(self.path, ns=(self.stat.st_atime_ns, self.stat.st_mtime_ns))

    def __exit__(self, *exc: object) -> None:
        self.restore()
        if self.path.read_bytes() != self.original:
            raise SystemExit(f"mutation: could not restore {self.path}; see {self.backup}")
        self.backup.unlink()
        for folder in (self.backup.parent, REPO / ".mutation"):
            if folder.is_dir() and not any(folder.iterdir()) and folder.is_relative_to(REPO):
                shutil.rmtree(folder, ignore_errors=True)


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # No .pyc of a mutant may outlive it (a same-size mutant written in the same second
    # would otherwise be read from a stale cache); one thread, the machine is shared.
    env.update(
        PYTHONDONTWRITEBYTECODE="1",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    return env


PYTEST_OPTIONS = ("-x", "-q", "-p", "no:cacheprovider")


def run_tests(pytest_args: list[str], timeout: float | None, fork: bool) -> tuple[str, float]:
    """Run pytest once; return ("passed" | "failed" | "timeout", seconds)."""
    if fork:
        return _run_forked(pytest_args, timeout)
    command = [sys.executable, "-m", "pytest", *PYTEST_OPTIONS, *pytest_args]
    began = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return "timeout", time.monotonic() - began
    return ("passed" if code == 0 else "failed"), time.monotonic() - began


def _run_forked(pytest_args: list[str], timeout: float | None) -> tuple[str, float]:
    """Run pytest in a fork of this process, which has the third-party imports done.

    This process never imports the project (see ``preload``), so the child imports it, and
    the mutant, from disk; only numpy, scipy, torch... are inherited already imported.
    """
    began = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: never return into the parent's code (its finally blocks)
        code = 3
        try:
            os.setpgrp()
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            sys.dont_write_bytecode = True
            os.chdir(REPO)
            import pytest

            code = int(pytest.main([*PYTEST_OPTIONS, *pytest_args]))
        finally:
            os._exit(code)
    deadline = None if timeout is None else began + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            return ("passed" if code == 0 else "failed"), time.monotonic() - began
        if deadline is not None and time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout", time.monotonic() - began
        time.sleep(0.02)


def _plugin_packages() -> set[str]:
    """Return the top-level modules of pytest plugin distributions.

    pytest rewrites their asserts on import and warns (an error here) if they came first.
    """
    from importlib import metadata

    names = {"_pytest", "pytest", "pluggy"}
    for dist in metadata.distributions():
        if not any(ep.group == "pytest11" for ep in dist.entry_points):
            continue
        for file in dist.files or ():
            top = file.parts[0]
            if not top.endswith((".dist-info", ".egg-info", ".pth")) and top != "..":
                names.add(top.removesuffix(".py"))
    return names


def preload(modules: dict[str, str | None]) -> None:
    """Import here the modules the tests imported, except the project's own and the tests'.

    Forked test runs then skip those imports. A module loaded from the repository (the
    package under test, tests, conftest) is left out, so every run imports it fresh.
    """
    import importlib

    own = {"ipwarmup", "tests", "conftest", "__main__", "__mp_main__", *_plugin_packages()}
    for name, file in sorted(modules.items()):
        if name.split(".")[0] in own:
            continue
        if file and Path(file).resolve().is_relative_to(REPO):
            continue
        try:
            importlib.import_module(name)
        except BaseException:  # one that will not preload is imported by the test run
            continue
    for name in [n for n in sys.modules if n.split(".")[0] == "ipwarmup"]:
        del sys.modules[name]  # a third-party import pulled the project in: drop it


def traced_baseline(path: Path, pytest_args: list[str]) -> tuple[set[int], dict[str, str | None]]:
    """Run the tests on the unmodified file under a line tracer.

    Returns the file's lines that ran and the modules the run imported (name to file).
    """
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "lines.json"
        command = [
            sys.executable,
            "-c",
            TRACE_SCRIPT,
            str(path),
            str(out),
            "-q",
            "-p",
            "no:cacheprovider",
            *pytest_args,
        ]
        subprocess.run(
            command,
            cwd=REPO,
            env=_environment(),
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not out.exists():
            raise SystemExit("mutation: the traced test run did not finish")
        data = json.loads(out.read_text())
    if data["code"] != 0:
        code = data["code"]
        raise SystemExit(f"mutation: the tests fail on the unmodified file (pytest exit {code})")
    return set(data["lines"]), data["modules"]


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"mutation: stopped by signal {signum}; file restored")


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Split ``argv`` at ``--`` into the script's options and pytest's arguments."""
    if "--" in argv:
        cut = argv.index("--")
        own, pytest_args = argv[:cut], argv[cut + 1 :]
    else:
        own, pytest_args = argv, []
    parser = argparse.ArgumentParser(
        prog="scripts/mutation",
        description="Mutate MODULE_FILE in place, one mutant at a time, and run the tests.",
        epilog="Example: scripts/mutation training/stats.py -- tests/training/test_stats.py",
    )
    parser.add_argument("module", type=Path, help="the Python file to mutate")
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    parser.add_argument("--only", default="", help="comma-separated mutant ids to run")
    parser.add_argument("--timeout", type=float, help="seconds per test run (default 3x+10)")
    parser.add_argument("--json", type=Path, help="write every mutant and its result here")
    parser.add_argument(
        "--no-fork",
        action="store_true",
        help="start a new interpreter per test run instead of forking a preloaded one",
    )
    args = parser.parse_args(own)
    if not args.list and not pytest_args:
        parser.error("give the tests after `--`, e.g. -- tests/training/test_stats.py")
    return args, pytest_args


def main(argv: list[str]) -> int:
    """Run the mutation test; return 0 (the score is printed, not judged)."""
    args, pytest_args = parse_args(argv)
    path = args.module.resolve()
    if not path.is_file() or path.suffix != ".py":
        raise SystemExit(f"mutation: {args.module}: expected a Python file")
    source = path.read_bytes()
    mutants = Mutator(source).collect()
    shown_path = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    chosen = set(range(len(mutants)))
    if args.only:
        chosen = {int(i) for i in args.only.split(",")}
    if args.list:
        for i, m in enumerate(mutants):
            if i in chosen:
                print(f"#{i} {shown_path}:{m.line}: [{m.kind}] {m.description}")
        return 0

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    print(f"mutation: {len(mutants)} mutants of {shown_path}; tests: {' '.join(pytest_args)}")
    covered, modules = traced_baseline(path, pytest_args)
    if not covered:
        raise SystemExit(
            f"mutation: the tests never ran a line of {path}; does the installed package "
            "import this file (pip install --no-deps -e . in this worktree)?"
        )
    fork = not args.no_fork and hasattr(os, "fork")
    if fork:
        os.environ.update(_environment())
        preload(modules)
    status, seconds = run_tests(pytest_args, None, fork)
    if status != "passed":
        raise SystemExit("mutation: the tests fail on the unmodified file")
    timeout = args.timeout or 3 * seconds + 10
    print(f"mutation: baseline {seconds:.1f} s, timeout {timeout:.0f} s per mutant")
    results: list[dict[str, Any]] = []
    with FileGuard(path) as guard:
        try:
            for i, m in enumerate(mutants):
                if i not in chosen:
                    continue
                first, last = m.stmt_lines
                if not covered & set(range(first, last + 1)):
                    outcome = "not run"
                else:
                    guard.write(m.apply(source))
                    try:
                        status, _ = run_tests(pytest_args, timeout, fork)
                    finally:
                        guard.restore()
                    outcome = {"passed": "survived", "failed": "killed"}.get(status, status)
                print(f"#{i:<4d} {outcome:8s} {shown_path}:{m.line}: {m.description}", flush=True)
                results.append(
                    {
                        "id": i,
                        "line": m.line,
                        "kind": m.kind,
                        "change": m.description,
                        "outcome": outcome,
                    }
                )
        finally:
            guard.restore()
    killed = [r for r in results if r["outcome"] in ("killed", "timeout")]
    survivors = [r for r in results if r not in killed]
    score = 100.0 * len(killed) / max(len(results), 1)
    print()
    print(f"score: {len(killed)}/{len(results)} killed ({score:.1f}%) in {shown_path}")
    if survivors:
        print("survivors:")
        for r in survivors:
            note = " (not run by the tests)" if r["outcome"] == "not run" else ""
            print(f"  #{r['id']} {shown_path}:{r['line']}: {r['change']}{note}")
    if args.json:
        args.json.write_text(json.dumps({"module": str(shown_path), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
