import pytest

from vggnet.errors import VggnetError
from vggnet.experiments.run import slug
from vggnet.experiments.studies import STUDIES, get_study
from vggnet.models import list_models
from vggnet.train.recipes import get_recipe


def test_the_six_studies_of_the_issue_and_their_arms_are_buildable():
    assert list(STUDIES) == ["depth", "lrn", "conv1x1", "filters", "init", "augment"]
    known = set(list_models())
    for study in STUDIES.values():
        labels = [a.label for a in study.arms]
        assert len({slug(label) for label in labels}) == len(labels), study.name  # one run dir per arm
        for i, arm in enumerate(study.arms):
            assert arm.model in known, arm.model
            if arm.init_from:
                assert arm.init_from in labels[:i]  # the donor trains first
            for budget in ("small", "medium", "full"):
                get_recipe("cifar", {**study.budget(budget), **arm.overrides})  # every override is a valid field
        for claim in study.claims:
            assert {claim.first, claim.second} <= set(labels) and claim.expect in ("better", "no gain")
    assert [a.label for a in STUDIES["depth"].arms] == ["A", "B", "D", "E", "A-BN", "B-BN", "D-BN", "E-BN"]
    init = {a.label: a.overrides.get("init") for a in STUDIES["init"].arms}
    assert init["D, paper"] == "paper" and init["E, glorot"] == "glorot" and init["D, from A"] == "normal001"
    pixels = {a.label: get_recipe("cifar", a.overrides) for a in STUDIES["init"].arms if a.model == "vgg11"}
    assert pixels["A, normal001, pixels 0-255"].pixel_range == 255
    assert not pixels["A, normal001, pixels 0-1"].normalize_std  # both A arms: mean subtraction only


def test_unknown_study_and_budget():
    with pytest.raises(VggnetError, match="unknown study 'width'; valid: depth, lrn"):
        get_study("width")
    with pytest.raises(VggnetError, match="unknown budget 'huge'; valid: small, medium, full"):
        get_study("lrn").budget("huge")


def test_the_medium_budget_is_the_whole_split_at_a_quarter_width_and_two_seeds():
    from vggnet.experiments.studies import SEEDS

    assert SEEDS == {"small": 1, "medium": 2, "full": 1}
    for study in STUDIES.values():
        recipe = get_recipe("cifar", study.budget("medium"))
        assert recipe.width == 0.25 and recipe.train_images == 0 and recipe.val_images == 0
        assert recipe.schedule == "onecycle" and recipe.lr_end == 0  # annealed to zero by the last step
        assert get_recipe("cifar", study.budget("small")).width == 1  # small and full keep the paper's widths
    donor = next(a for a in STUDIES["init"].arms if a.label == "A (donor)")
    assert donor.epochs_factor == 1.25 and "epochs" not in donor.overrides
