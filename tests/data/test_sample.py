import tarfile
from collections import Counter

from vggnet.data.datasets import SAMPLE_IMAGES, load_data, sample_archive


def test_embedded_sample_is_small_balanced_and_real():
    archive = sample_archive()
    assert archive.stat().st_size <= 2_000_000
    with tarfile.open(archive) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    per_split_class = Counter(tuple(n.split("/")[:2]) for n in names)
    assert set(per_split_class.values()) == {400, 100} and len(per_split_class) == 20
    assert len(names) == SAMPLE_IMAGES  # what messages about shipped weights count against


def test_sample_loads_as_train_and_held_out_val(tmp_path, monkeypatch):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path))
    splits = load_data("sample", progress=False)
    assert splits.name == "sample" and splits.in_memory and splits.native_size == 32
    assert (len(splits.train), len(splits.val), splits.test, splits.skipped) == (4000, 1000, None, {})
    assert splits.classes[:3] == ["airplane", "automobile", "bird"] and len(splits.classes) == 10
    assert splits.train.images.float().std() > 40  # photographs, not blank images
