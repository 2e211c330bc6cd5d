"""ImageNet's flat validation folder, labelled by Kaggle's LOC_val_solution.csv or by the devkit's
ground-truth file and meta.mat; mislabelled, missing and hostile ground truth stop in one line."""

import io

import numpy as np
import pytest
from PIL import Image

from vggnet.data.datasets import labels_of, load_data, names_of
from vggnet.errors import DataError

WNIDS = ["n01440764", "n01443537", "n01484850"]  # tench, goldfish, great white shark: sorted
DEVKIT_ORDER = ["n01484850", "n01440764", "n01443537"]  # the devkit numbers classes in its own order


def _jpeg(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (40 * i % 256, 9, 200)).save(buf, format="JPEG")
    return buf.getvalue()


def _tree(root, val_labels):
    """train/<wnid>/ with two images each; val/ flat, image k of class val_labels[k-1]."""
    for w in WNIDS:
        (root / "train" / w).mkdir(parents=True)
        for i in range(2):
            (root / "train" / w / f"{w}_{i}.JPEG").write_bytes(_jpeg(i))
    (root / "val").mkdir()
    for k in range(1, len(val_labels) + 1):
        (root / "val" / f"ILSVRC2012_val_{k:08d}.JPEG").write_bytes(_jpeg(k))
    return root


def _val(splits):
    return {n.split("/")[-1]: splits.classes[i] for n, i in zip(names_of(splits.val), labels_of(splits.val).tolist(),
                                                                strict=True)}


def test_kaggle_solution_labels_the_flat_val_folder(tmp_path):
    truth = ["n01443537", "n01440764", "n01484850", "n01443537"]
    root = _tree(tmp_path / "imagenet", truth)
    rows = [f"ILSVRC2012_val_{k:08d},{w} 10 20 30 40 {w} 1 2 3 4" for k, w in enumerate(truth, start=1)]
    (root / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n" + "\n".join(rows[::-1]) + "\n")
    splits = load_data(root, progress=False)
    assert splits.classes == WNIDS and len(splits.train) == 6
    assert _val(splits) == {f"ILSVRC2012_val_{k:08d}.JPEG": w for k, w in enumerate(truth, start=1)}


def test_an_image_the_file_does_not_name_stays_out_with_the_reason(tmp_path):
    root = _tree(tmp_path / "imagenet", ["n01440764", "n01443537"])
    (root / "LOC_val_solution.csv").write_text("ImageId,PredictionString\nILSVRC2012_val_00000001,n01440764 1 2 3 4\n")
    splits = load_data(root, progress=False)
    assert list(_val(splits)) == ["ILSVRC2012_val_00000001.JPEG"]
    assert splits.ignored["val/ILSVRC2012_val_00000002.JPEG"] == \
        "in a flat validation folder, not named in LOC_val_solution.csv"


def _meta_mat(path, order):
    from scipy.io import savemat

    synsets = np.zeros((len(order) + 1,), dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O")])
    for i, w in enumerate(order, start=1):
        synsets[i - 1] = (i, w, "a class")
    synsets[-1] = (1001, "n00001740", "entity")  # the devkit's higher synsets have ids past 1000
    savemat(path, {"synsets": synsets})


def test_devkit_ground_truth_with_its_meta_mat(tmp_path):
    truth = ["n01484850", "n01484850", "n01440764", "n01443537"]
    root = _tree(tmp_path / "imagenet", truth)
    devkit = root / "ILSVRC2012_devkit_t12" / "data"
    devkit.mkdir(parents=True)
    _meta_mat(devkit / "meta.mat", DEVKIT_ORDER)
    (devkit / "ILSVRC2012_validation_ground_truth.txt").write_text(
        "\n".join(str(DEVKIT_ORDER.index(w) + 1) for w in truth) + "\n")
    splits = load_data(root, progress=False)
    assert splits.classes == WNIDS  # indices are the sorted WordNet ids, not the devkit's numbering
    assert _val(splits) == {f"ILSVRC2012_val_{k:08d}.JPEG": w for k, w in enumerate(truth, start=1)}


@pytest.mark.parametrize(("case", "message"), [
    ("devkit-without-meta", "its meta.mat must be beside it"),
    ("bad-id", "line 2: '1007' is not an ILSVRC2012_ID in meta.mat"),
    ("not-kaggle", "is not Kaggle's solution file"),
    ("no-wnid", "line 2: no WordNet id"),
    ("both", "both label the validation images"),
    ("unknown-class", "split 'val' has classes missing from 'train': n09999999"),
    ("junk-meta", "is not the ImageNet devkit's meta.mat"),
])
def test_bad_ground_truth_stops_in_one_line(tmp_path, case, message):
    root = _tree(tmp_path / "imagenet", ["n01440764", "n01443537"])
    kaggle = root / "LOC_val_solution.csv"
    devkit = root / "ILSVRC2012_validation_ground_truth.txt"
    if case == "devkit-without-meta":
        devkit.write_text("1\n2\n")
    elif case == "bad-id":
        _meta_mat(root / "meta.mat", DEVKIT_ORDER)
        devkit.write_text("1\n1007\n")
    elif case == "not-kaggle":
        kaggle.write_text("id,label\nILSVRC2012_val_00000001,n01440764\n")
    elif case == "no-wnid":
        kaggle.write_text("ImageId,PredictionString\nILSVRC2012_val_00000001,tench 1 2 3 4\n")
    elif case == "both":
        kaggle.write_text("ImageId,PredictionString\n")
        devkit.write_text("1\n")
    elif case == "unknown-class":
        kaggle.write_text("ImageId,PredictionString\nILSVRC2012_val_00000001,n09999999 1 2 3 4\n")
    else:
        (root / "meta.mat").write_bytes(b"MATLAB 5.0 MAT-file, not really" + b"\0" * 200)
        devkit.write_text("1\n")
    with pytest.raises(DataError, match=message) as err:
        load_data(root, progress=False)
    assert "\n" not in str(err.value)


def test_a_huge_ground_truth_file_is_not_read(tmp_path):
    root = _tree(tmp_path / "imagenet", ["n01440764"])
    with open(root / "LOC_val_solution.csv", "wb") as f:
        f.truncate(65 << 20)  # sparse: 65 MB declared, over the 64 MB bound
    with pytest.raises(DataError, match="larger than an ImageNet ground-truth file can be"):
        load_data(root, progress=False)


def test_the_ground_truth_file_is_not_reported_unused_and_missing_images_are_counted(tmp_path, caplog):
    root = _tree(tmp_path / "imagenet", [0, 1])
    (root / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n"
                                               f"ILSVRC2012_val_00000001,{WNIDS[0]} 1 2 3 4\n"
                                               f"ILSVRC2012_val_00000002,{WNIDS[1]} 1 2 3 4\n"
                                               f"ILSVRC2012_val_00000003,{WNIDS[2]} 1 2 3 4\n")
    with caplog.at_level("WARNING", logger="vggnet"):
        splits = load_data(root, progress=False)
    assert len(splits.val) == 2 and splits.ignored["LOC_val_solution.csv"].startswith("the labels of")
    assert "not used" not in caplog.text and "1 of the 3 images LOC_val_solution.csv labels are not in" in caplog.text
