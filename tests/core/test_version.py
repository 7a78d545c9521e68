"""``ipwarmup --version`` prints the installed package's version and exits 0."""

from importlib.metadata import version

import pytest

from ipwarmup.cli import main


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"ipwarmup {version('ipwarmup')}\n"
