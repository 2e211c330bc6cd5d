import csv
import json
import shutil

import pytest
import torch

from vggnet.data import transforms
from vggnet.errors import VggnetError
from vggnet.quantize.calibration import plan_images
from vggnet.runs import load_checkpoint
from vggnet.train.loop import resume as resume_run
from vggnet.train.loop import train
from vggnet.train.recipes import get_recipe

FAST = {"batch_size": "16", "lr": "0.01", "val_fraction": "0.25", "precision": "fp32"}


def _run(data, out, epochs, resume=False, **overrides):
    if resume:
        return resume_run(out, epochs=epochs, progress=False)
    recipe = get_recipe("cifar", {**FAST, "epochs": str(epochs), **overrides})
    return train("vgg11_bn", data, recipe, out, seed=0, deterministic=True, progress=False)


def _same_weights(a, b):
    wa, wb = load_checkpoint(a).weights, load_checkpoint(b).weights
    return all(torch.equal(wa[k], wb[k]) for k in wa)


def test_training_learns_and_writes_the_run(colours, tmp_path):
    result = _run(colours, tmp_path / "run", epochs=3)
    run = tmp_path / "run"
    assert result.metrics["top1"] >= 0.9  # colour is easy; chance is 1/3
    rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3] and float(rows[-1]["lr"]) == 0.0  # one-cycle ends at 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"top1", "top5", "loss", "per_class", "confusion_matrix"} <= set(metrics)
    assert sum(map(sum, metrics["confusion_matrix"])) == metrics["images"] == 18
    for name in ("report.md", "curves.png", "confusion.png", "confusion.txt", "run.json"):
        assert (run / name).stat().st_size > 0, name
    assert (run / "checkpoints" / "LATEST").read_text().strip() == "epoch-0003"


def test_resume_extends_a_finished_run_exactly(colours, tmp_path):
    constant = {"schedule": "constant"}  # one-cycle depends on the epoch count; a constant rate does not
    _run(colours, tmp_path / "straight", epochs=2, **constant)
    _run(colours, tmp_path / "split", epochs=1, **constant)
    resumed = _run(colours, tmp_path / "split", epochs=2, resume=True)
    assert _same_weights(tmp_path / "straight", tmp_path / "split")
    straight = load_checkpoint(tmp_path / "straight").state["history"]
    for a, b in zip(straight, resumed.history, strict=True):
        assert {k: v for k, v in a.items() if k not in ("seconds", "images_per_s")} == \
               {k: v for k, v in b.items() if k not in ("seconds", "images_per_s")}


def _interrupted(monkeypatch, start_run) -> None:
    """Run ``start_run`` with Ctrl-C arriving at the second batch of epoch 2 (4 batches per epoch)."""
    calls = {"n": 0}
    real = transforms.BatchTransform.__call__

    def interrupt(self, x, train, generator=None):
        calls["n"] += train
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(self, x, train, generator)

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(transforms.BatchTransform, "__call__", interrupt)
        start_run()


def test_interrupted_epoch_resumes_from_the_last_checkpoint(colours, tmp_path, monkeypatch):
    _run(colours, tmp_path / "straight", epochs=2)
    _interrupted(monkeypatch, lambda: _run(colours, tmp_path / "cut", epochs=2))
    assert (tmp_path / "cut" / "checkpoints" / "LATEST").read_text().strip() == "epoch-0001"
    _run(colours, tmp_path / "cut", epochs=2, resume=True)
    assert _same_weights(tmp_path / "straight", tmp_path / "cut")


def test_existing_run_is_not_overwritten(colours, tmp_path):
    _run(colours, tmp_path / "run", epochs=1)
    with pytest.raises(VggnetError, match="already holds a run; pass --resume"):
        _run(colours, tmp_path / "run", epochs=1)


def test_paper_recipe_with_plateau_and_pca_runs(colours, tmp_path):
    recipe = get_recipe("paper", {"epochs": "2", "batch_size": "16", "lr": "0.01", "val_fraction": "0.25",
                                  "lr_drop_patience": "0", "dropout": "0.5"})
    result = train("vgg11", colours, recipe, tmp_path / "p", progress=False)
    assert len(result.history) == 2 and result.history[0]["lr"] == 0.01
    meta = load_checkpoint(tmp_path / "p").meta
    assert meta["model_kwargs"] == {"num_classes": 3, "head": "small", "dropout": 0.5, "init": "normal001",
                                    "width": 1.0}
    x = torch.full((1, 3, 2, 2), 0.75)  # a pixel of 191.25 on [0, 255]
    mean, std = torch.tensor(meta["mean"]).view(1, 3, 1, 1), torch.tensor(meta["std"]).view(1, 3, 1, 1)
    assert torch.allclose((x - mean) / std, 255 * (x - mean), rtol=1e-6)  # mean subtracted, Caffe's 0-255 units


def test_deeper_net_starts_from_a_trained_shallower_one(colours, tmp_path):
    paper = {"batch_size": "16", "val_fraction": "0.25", "precision": "fp32"}
    train("vgg11", colours, get_recipe("paper", {**paper, "epochs": "1"}), tmp_path / "a", progress=False)
    still = get_recipe("paper", {**paper, "epochs": "1", "lr": "1e-30", "init_from": str(tmp_path / "a")})
    train("vgg13", colours, still, tmp_path / "b", progress=False)  # lr ~ 0: weights stay as initialised
    a, b = load_checkpoint(tmp_path / "a").weights, load_checkpoint(tmp_path / "b").weights
    # A's first four convs (conv1_1, conv2_1, conv3_1, conv3_2) go to the same paper names in B.
    pairs = {"features.0": "features.0", "features.3": "features.5", "features.6": "features.10",
             "features.8": "features.12", "classifier.0": "classifier.0", "classifier.6": "classifier.6"}
    for ka, kb in pairs.items():
        for part in ("weight", "bias"):  # equal up to lr * gradient ~ 1e-30
            torch.testing.assert_close(a[f"{ka}.{part}"], b[f"{kb}.{part}"], rtol=1e-6, atol=1e-25)
    assert abs(b["features.2.weight"].std().item() - 0.01) < 0.001  # conv1_2 is new: N(0, 0.01)


def test_large_images_stream_with_the_paper_pipeline(tmp_path):
    from tests.helpers import colour_folders

    data = colour_folders(tmp_path / "big", per_class=8, size=96)  # > 64 px: streamed, not held in memory
    (data / "red" / "broken.png").write_bytes(b"\x89PNG broken")
    recipe = get_recipe("paper", {"epochs": "1", "batch_size": "8", "image_size": "64", "scale": "72-96",
                                  "test_scale": "72", "val_fraction": "0.25", "workers": "2", "precision": "fp32"})
    result = train("vgg11", data, recipe, tmp_path / "run", progress=False)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (run["image_size"], run["train_images"], run["val_images"]) == (64, 19, 6)
    meta = load_checkpoint(tmp_path / "run").meta
    assert meta["in_memory"] is False and meta["image_size"] == 64 and meta["test_scale"] == 72
    assert result.metrics["images"] + result.metrics["skipped"] == 6


def test_fine_tuning_starts_from_pretrained_weights_and_says_what_it_left(colours, tmp_path, caplog):
    from vggnet.models import create_model

    source = create_model("vgg11_bn", num_classes=10, head="linear")  # pretrained on 10 classes, say
    torch.save(source.state_dict(), tmp_path / "pretrained.pth")  # torchvision's layout: RGB, ImageNet mean/std
    with caplog.at_level("WARNING", logger="vggnet"):
        _run(colours, tmp_path / "run", epochs=1, lr="1e-6", weights=str(tmp_path / "pretrained.pth"))
    assert "classifier.0 not loaded (freshly initialised for 3 classes): fine-tune them" in caplog.text
    ckpt = load_checkpoint(tmp_path / "run")
    first = source.state_dict()["features.0.weight"]
    assert (ckpt.weights["features.0.weight"] - first).abs().max() < 1e-4 * first.abs().max()
    assert ckpt.meta["mean"] == [0.485, 0.456, 0.406] and ckpt.meta["channels"] == "RGB"
    with pytest.raises(VggnetError, match="not both"):
        _run(colours, tmp_path / "run2", epochs=1, weights="x.pth", init_from="y")


def test_a_run_saved_with_the_old_bf16_switch_resumes(colours, tmp_path):
    _run(colours, tmp_path / "run", epochs=1)
    run_json = tmp_path / "run" / "run.json"
    saved = json.loads(run_json.read_text())
    del saved["recipe"]["precision"], saved["recipe"]["grad_checkpointing"], saved["recipe"]["weights"]
    del saved["recipe"]["memory_format"]
    saved["recipe"]["bf16"] = False  # as runs were written before 'precision' existed
    saved["recipe"]["channels_last"] = False  # ... and before 'memory_format'
    run_json.write_text(json.dumps(saved))
    _run(colours, tmp_path / "run", epochs=2, resume=True)
    resumed = json.loads(run_json.read_text())
    assert resumed["recipe"]["precision"] == "fp32" and resumed["recipe"]["memory_format"] == "contiguous"
    assert resumed["precision"] == "fp32" and resumed["channels_last"] is False  # what the run really used


def test_a_resumed_auto_run_keeps_its_precision_and_lists_its_machines(colours, tmp_path, monkeypatch):
    # Began (say) on a CPU where auto chose bf16, resumed on this one where auto picks fp32: the run
    # stays bf16, one arithmetic per run, and run.json names both machines in order.
    from vggnet.fastpath import machine_name
    from vggnet.train import loop

    chosen = []
    real = loop.autocast_dtype
    monkeypatch.setattr(loop, "autocast_dtype", lambda precision, device: chosen.append(precision)
                        or real(precision, device))
    _run(colours, tmp_path / "run", epochs=1, precision="auto")
    run_json = tmp_path / "run" / "run.json"
    here = machine_name(torch.device("cpu"))
    assert json.loads(run_json.read_text())["machines"] == [here]
    saved = json.loads(run_json.read_text())
    saved.update(precision="bf16", machines=["AMD EPYC 9R14, 2 cores"])
    run_json.write_text(json.dumps(saved))
    chosen.clear()
    _run(colours, tmp_path / "run", epochs=2, resume=True)
    resumed = json.loads(run_json.read_text())
    assert chosen[0] == "bf16" and resumed["precision"] == "bf16" and resumed["recipe"]["precision"] == "auto"
    assert resumed["fast_path"].endswith("(the run keeps bf16, chosen where it began)")
    assert resumed["machines"] == ["AMD EPYC 9R14, 2 cores", here]
    _run(colours, tmp_path / "run", epochs=3, resume=True)  # this machine again: listed once
    assert json.loads(run_json.read_text())["machines"] == ["AMD EPYC 9R14, 2 cores", here]


def test_an_explicit_precision_is_taken_on_resume(colours, tmp_path):
    from vggnet.train.recipes import Recipe
    from vggnet.train.setup import kept_precision, ran_on

    for damaged in (None, 5, "abc", [1, "A"]):  # a hand-edited run.json: what is not a list of names is dropped
        assert ran_on({"machines": damaged}, "B") == (["A", "B"] if isinstance(damaged, list) else ["B"])

    assert kept_precision(Recipe(name="x", precision="fp32"), {"precision": "bf16"}) == "fp32"
    assert kept_precision(Recipe(name="x", precision="auto"), {}) == "auto"  # a new run: auto decides here
    assert kept_precision(Recipe(name="x", precision="auto"), {"precision": "fp16?"}) == "auto"  # damaged: ignored


def test_run_json_records_what_auto_chose(colours, tmp_path, monkeypatch):
    from vggnet import fastpath

    monkeypatch.delenv("VGGNET_PROBE")
    monkeypatch.setattr(fastpath, "_MEMO", {})
    monkeypatch.setattr(fastpath, "probe", lambda device, **kw: {
        "infer": {"fp32/nchw": 1.0, "fp32/channels_last": 1.0, "bf16/nchw": 0.5, "bf16/channels_last": 0.5},
        "train": {"fp32/nchw": 1.0, "fp32/channels_last": 2.0, "bf16/nchw": 0.5, "bf16/channels_last": 2.0}})
    from vggnet import layoutprobe

    measured = []
    monkeypatch.setattr(layoutprobe, "_MEMO", {})
    monkeypatch.setattr(layoutprobe, "measure", lambda model, shape, device, training, dtype, **kw: measured.append(
        (type(model).__name__, shape, training, dtype)) or {"nchw": 1.0, "channels_last": 1.5})
    _run(colours, tmp_path / "run", epochs=1, precision="auto")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["precision"] == "bf16" and info["channels_last"] is False  # training's choice, not inference's
    assert info["fast_path"].startswith("bf16, NCHW: 2.00x fp32 NCHW")
    # the layout is measured on the network being trained, at its input size, in its precision
    assert measured == [("VGG", (3, 32, 32), True, torch.bfloat16)]
    assert info["memory_layout"].startswith("NCHW for this network: channels_last 0.67x NCHW")


def test_cifar_fast_trains_its_own_network_with_a_fitted_stem_and_tta(colours, tmp_path):
    recipe = get_recipe("cifar-fast", {"epochs": "2", "batch_size": "16", "lr": "0.2", "val_fraction": "0.25"})
    result = train(None, colours, recipe, tmp_path / "fast", seed=0, progress=False)  # no model: the recipe's
    ckpt = load_checkpoint(tmp_path / "fast")
    assert ckpt.meta["model"] == "vgg_fast"
    stem = ckpt.weights["features.0.weight"]
    assert stem.shape == (24, 3, 2, 2) and torch.equal(stem[12:], -stem[:12])  # whitening filters and negatives
    m = result.metrics
    assert m["tta"] == 2 and 0 <= m["top1_without_tta"] <= 1 and m["wall_seconds"] > 0
    assert m["top1"] >= 0.9  # colour is easy; chance is 1/3


def _fast(**overrides):
    return get_recipe("cifar-fast", {"epochs": "2", "batch_size": "16", "val_fraction": "0.25", "precision": "fp32",
                                     "stem_bias_epochs": "1", "lookahead": "2", **overrides})


def test_cifar_fast_resumes_exactly_with_its_weight_average_and_frozen_stem_bias(colours, tmp_path, monkeypatch):
    train(None, colours, _fast(), tmp_path / "straight", seed=0, deterministic=True, progress=False)
    _interrupted(monkeypatch, lambda: train(None, colours, _fast(), tmp_path / "cut", seed=0, deterministic=True,
                                            progress=False))
    assert "lookahead" in load_checkpoint(tmp_path / "cut").state
    resume_run(tmp_path / "cut", progress=False)
    assert _same_weights(tmp_path / "straight", tmp_path / "cut")
    first = tmp_path / "one"
    train(None, colours, _fast(epochs="1"), first, seed=0, deterministic=True, progress=False)
    assert not torch.equal(load_checkpoint(first).weights["features.0.bias"], torch.zeros(24))  # it did learn


def test_val_fraction_0_trains_on_every_image_and_says_how_to_score_it(colours, tmp_path, caplog):
    from vggnet.evaluate.run import evaluate_checkpoint

    run = tmp_path / "all"
    result = train(None, colours, _fast(val_fraction="0"), run, seed=0, progress=False)
    info = json.loads((run / "run.json").read_text())
    assert (info["train_images"], info["val_images"]) == (72, 0)
    assert json.loads((run / "split.json").read_text())["held_out"] == []
    assert result.metrics["split"] == "none" and "vggnet evaluate" in result.metrics["note"]
    assert "none is held out" in caplog.text
    rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
    assert [r["val_top1"] for r in rows] == ["nan", "nan"] and float(rows[-1]["train_top1"]) > 0
    report = (run / "report.md").read_text()
    assert "Trained on all 72 images" in report and (run / "curves.png").stat().st_size > 0
    assert not (run / "confusion.png").exists()
    with pytest.raises(VggnetError, match=r"trained on every image of .* \(val_fraction=0\) and held none out"):
        evaluate_checkpoint(run, colours, tmp_path / "ev", progress=False)
    m = evaluate_checkpoint(run, colours, tmp_path / "ev-all", split="all", progress=False)
    assert m["images"] == 72 and "training images included" in m["images_are"]
    copy = tmp_path / "copy"
    shutil.copytree(colours, copy)  # the same images elsewhere: still the run's training data
    with pytest.raises(VggnetError, match="held none out"):
        evaluate_checkpoint(run, copy, tmp_path / "ev-copy", progress=False)
    plan = plan_images(run, load_checkpoint(run).meta, colours, 8)  # int8 calibration on it: fine, nothing scored
    assert len(plan.calibrate) == 8 and plan.score is None and "val_fraction=0" in plan.unscored
    few = train(None, colours, _fast(val_fraction="0", train_images="12", epochs="1"), tmp_path / "few", seed=0,
                progress=False)
    assert json.loads((few.run_dir / "run.json").read_text())["train_images"] == 12
    with pytest.raises(VggnetError, match="plateau schedule lowers the rate when validation accuracy stalls"):
        _run(colours, tmp_path / "plateau", epochs=1, val_fraction="0", schedule="plateau")


def test_a_fixed_stem_gets_no_gradient_and_a_short_run_says_lookahead_has_no_effect(colours, tmp_path, caplog):
    run = tmp_path / "cifar"
    train("vgg_fast", colours, get_recipe("cifar", {**FAST, "epochs": "1"}), run, seed=0, progress=False)
    assert torch.equal(load_checkpoint(run).weights["features.0.bias"], torch.zeros(24))  # stem_bias_epochs=0
    train(None, colours, _fast(batch_size="72", val_fraction="0.5", lookahead="5"), tmp_path / "short", seed=0,
          progress=False)  # 2 steps, fewer than lookahead's 5 (test_lookahead: the net is then left as trained)
    assert "lookahead=5 but the run takes 2 steps: the weights are never averaged" in caplog.text


def test_an_ensemble_with_no_common_held_out_image_is_not_called_val_fraction_0():
    from vggnet.evaluate.run import NothingHeldOut, _nothing_held_out

    members = _nothing_held_out("a", "d", "other data", {"ensemble": True, "held_out": []})
    assert "held out no image of d in common" in str(members) and not isinstance(members, NothingHeldOut)
    assert isinstance(_nothing_held_out("a", "d", "other data", {"held_out": []}), NothingHeldOut)


def test_muon_trains_through_the_loop_and_resumes_exactly(colours, tmp_path, monkeypatch):
    recipe = _fast(optimizer="muon")
    result = train(None, colours, recipe, tmp_path / "straight", seed=0, deterministic=True, progress=False)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    _interrupted(monkeypatch, lambda: train(None, colours, recipe, tmp_path / "cut", seed=0, deterministic=True,
                                            progress=False))
    state = load_checkpoint(tmp_path / "cut").state["optimizer"]
    assert any(g.get("orthogonal") for g in state["param_groups"])  # the filters' group survives a checkpoint
    resume_run(tmp_path / "cut", progress=False)
    assert _same_weights(tmp_path / "straight", tmp_path / "cut")
