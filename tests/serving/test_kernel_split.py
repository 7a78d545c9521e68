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
from ipwarmup.serving import digits, jsonrows, kernel, kernel_record

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
