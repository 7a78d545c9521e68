"""The one-record kernel's three modules: numba's cache sees a change to any of them.

numba's ``cache=True`` keys a compiled function's machine code to its own file alone
(numba issue #1833): code it calls or constants it reads from another file are baked in
and not checked. :mod:`ipwarmup.numba_cache` stamps every compiled function of
``serving/`` with all of the package's modules instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ipwarmup import numba_cache
from ipwarmup.serving import digits, jsonrows, kernel, kernel_layout, kernel_record

FOLDER = Path(kernel.__file__).parent


@pytest.mark.parametrize(
    "compiled",
    [
        kernel.decide,
        kernel.encode_rows,
        kernel_record.prepare,
        jsonrows.read_batch,
        digits.to_float,
    ],
)
def test_each_cached_kernel_is_stale_when_any_module_of_serving_changes(compiled: Any) -> None:
    # kernel.py builds in kernel_record's code and kernel_layout's constants, jsonrows.py
    # digits.py's code: numba's own stamp (the function's file) would miss such a change.
    locator = compiled._cache._impl._locator
    assert isinstance(
        locator, numba_cache.PackageCacheLocator | numba_cache.PackageUserCacheLocator
    )
    assert len(locator.get_source_stamp()) == len(list(FOLDER.glob("*.py")))


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
