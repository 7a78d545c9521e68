"""scripts/mutation.py: which mutants it makes, and that the file always comes back."""

import signal

import pytest


@pytest.fixture(scope="module")
def mutation(load_script):
    return load_script("mutation")


SOURCE = b'''"""Doc."""
import numpy as np

LIMIT = 3  # pragma: no mutate


def f(x: int, y: float = 0.5) -> float:
    """Docstring 1 is not mutated."""
    z = x + 1
    if x < 2 and not y:
        return np.floor(z * y)
    return max(z, 0) if x == 0 else min(z, -x, key=abs)
'''


def _changes(mutation, source):
    return [
        (m.line, m.description, m.apply(source).decode())
        for m in mutation.Mutator(source).collect()
    ]


def test_every_operator_kind_is_made_on_the_right_line(mutation):
    changes = _changes(mutation, SOURCE)
    described = {(line, text) for line, text, _ in changes}
    expected = {
        (7, "`0.5` -> `1.5`"),
        (7, "`0.5` -> `(-0.5)`"),
        (9, "removed `z = x + 1`"),
        (9, "`+` -> `-`"),
        (9, "`1` -> `0`"),
        (9, "`1` -> `2`"),
        (9, "`1` -> `(-1)`"),
        (10, "`<` -> `<=`"),
        (10, "`<` -> `>=`"),
        (10, "`and` -> `or`"),
        (10, "removed `not` before `y`"),
        (10, "`2` -> `3`"),
        (11, "`floor` -> `ceil`"),
        (11, "`*` -> `/`"),
        (12, "`max` -> `min`"),
        (12, "`min` -> `max`"),
        (12, "`==` -> `!=`"),
        (12, "`0` -> `1`"),
        (12, "removed `-` before `x`"),
        (12, "removed keyword `key=abs`"),
    }
    assert expected <= described
    lines = {line for line, _, _ in changes}
    assert not lines & {1, 2, 4, 8}  # docstrings, imports and the pragma line stay
    # Every mutant compiles and differs from the original in one place only.
    for _line, _text, mutated in changes:
        compile(mutated, "<m>", "exec")
        assert mutated != SOURCE.decode()
    removed_key = next(m for _, t, m in changes if t == "removed keyword `key=abs`")
    assert "min(z, -x)" in removed_key


def test_utf8_columns_are_byte_offsets(mutation):
    source = 'def g(a):\n    s = "é" if a else "ü"\n    return len(s) > 1\n'.encode()
    mutated = [m.apply(source).decode() for m in mutation.Mutator(source).collect()]
    assert "    return len(s) >= 1\n" in "".join(mutated)


def test_the_guard_restores_bytes_and_time_even_on_error(mutation, tmp_path, monkeypatch):
    monkeypatch.setattr(mutation, "REPO", tmp_path)
    target = tmp_path / "pkg" / "mod.py"
    target.parent.mkdir()
    target.write_bytes(SOURCE)
    before = target.stat().st_mtime_ns
    with pytest.raises(RuntimeError), mutation.FileGuard(target) as guard:
        guard.write(b"broken = (")
        assert (tmp_path / ".mutation" / "pkg" / "mod.py.orig").read_bytes() == SOURCE
        raise RuntimeError
    assert target.read_bytes() == SOURCE
    assert target.stat().st_mtime_ns == before
    assert not (tmp_path / ".mutation").exists()


def test_a_leftover_backup_stops_the_next_run(mutation, tmp_path, monkeypatch):
    monkeypatch.setattr(mutation, "REPO", tmp_path)
    target = tmp_path / "mod.py"
    target.write_bytes(SOURCE)
    (tmp_path / ".mutation").mkdir()
    (tmp_path / ".mutation" / "mod.py.orig").write_bytes(SOURCE)
    with pytest.raises(SystemExit, match="may still hold a mutant"):
        mutation.FileGuard(target).__enter__()
    assert target.read_bytes() == SOURCE


def test_sigterm_becomes_an_exit_that_runs_the_finally_blocks(mutation):
    with pytest.raises(SystemExit, match="signal 15"):
        mutation._terminate(signal.SIGTERM, None)
