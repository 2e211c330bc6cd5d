import pytest

from tests.helpers import colour_folders


@pytest.fixture
def colours(tmp_path, monkeypatch):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "cache"))
    return colour_folders(tmp_path / "colours")
