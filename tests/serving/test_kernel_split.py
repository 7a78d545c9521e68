"""The one-record kernel's three modules: numba's cache sees a change to any of them.

numba's ``cache=True`` keys a compiled function's machine code to its own file alone
(numba issue #1833): code it calls or constants it reads from another file are baked in
and not checked. ``serving/kernel.py`` and ``serving/kernel_record.py`` record the SHA-256
of each file they read from (``_DEPENDS``); a change there must update that line, which
changes the reading module and so invalidates its cache.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import ModuleType

import pytest

from ipwarmup.serving import kernel, kernel_layout, kernel_record

FOLDER = Path(kernel.__file__).parent


@pytest.mark.parametrize(
    ("module", "reads"),
    [(kernel_record, {"kernel_layout.py"}), (kernel, {"kernel_layout.py", "kernel_record.py"})],
)
def test_each_cached_module_records_the_files_it_reads(module: ModuleType, reads: set[str]) -> None:
    assert set(module._DEPENDS) == reads
    for name, digest in module._DEPENDS.items():
        actual = hashlib.sha256((FOLDER / name).read_bytes()).hexdigest()
        assert actual == digest, (
            f"{name} changed: set {module.__name__}._DEPENDS[{name!r}] to {actual!r} "
            f"(numba's cache of {Path(str(module.__file__)).name} would not see the change)"
        )


def test_the_split_keeps_every_name_where_callers_find_it() -> None:
    """``kernel.X`` still means what it meant before the split, for callers and tests."""
    compiled = ("read", "check", "prepare", "prepare_rows", "log_inputs", "counts_at")
    for name in (
        *compiled,
        "_read",
        "_check",
        "_prepare",
        "_prepare_rows",
        "_log_inputs",
        "_HEADER",
    ):
        assert getattr(kernel, name) is getattr(kernel_record, name), name
    for name in ("_ENCODER", "_N_PROVIDERS", "_FLAGS", "_BLOCKS"):
        assert getattr(kernel, name) == getattr(kernel_layout, name), name
