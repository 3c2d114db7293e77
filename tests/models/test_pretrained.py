"""Pretrained weights: the shipped ones (checksums, accuracy), the mechanism on a weights folder
made here, torchvision's from the hub cache, and other people's checkpoints."""

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import reslab
from reslab.errors import CheckpointError, ConfigError, UserError
from reslab.models import pretrained
from tests.conftest import CLASSES

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = (
    ROOT.parent / "shared" / "weights" / "cifar10-resnet20-reference" / "resnet20-12fca82f.th"
)
needs_reference = pytest.mark.skipif(
    not REFERENCE.is_file(), reason=f"the shared reference checkpoint is not at {REFERENCE}"
)


def _accuracy(model, data_dir, mean, std) -> float:
    from reslab.data import DeviceLoader, load_dataset
    from reslab.metrics.evaluation import evaluate_batches

    data = load_dataset("cifar10-sample", data_dir)
    loader = DeviceLoader(data.test, batch_size=500, mean=mean, std=std, train=False, device="cpu")
    return evaluate_batches(model, loader, 10).top1


# -- the weights that ship ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(pretrained.shipped()))
def test_shipped_file_matches_its_manifest(name):
    w = pretrained.shipped()[name]
    assert pretrained.sha256(w.file) == w.manifest["sha256"]
    assert set(pretrained.MANIFEST_KEYS) <= set(w.manifest)
    # Every file beats 85% (the depth family's ResNet-20 at 40 epochs: 87.66%); each model's
    # default, what pretrained=True gives, beats 88%.
    assert w.manifest["test_acc"] >= (0.88 if w.manifest["default"] else 0.85)
    assert len(w.manifest["classes"]) == 10
    # Nothing of the trainer's machine: the data by its folder's name and its checksums.
    assert w.manifest["config"]["dataset"] == "folder:cifar10"
    assert w.manifest["config"]["data_dir"] == "" and "/root" not in w.file.read_bytes()[
        :4096
    ].decode(errors="replace")
    assert set(w.manifest["data_digests"]) == {"train", "test"}


@pytest.mark.parametrize("name", sorted(pretrained.shipped()))
def test_shipped_weights_score_what_their_manifest_says(name, data_dir):
    """The shipped sample's 1,000 test images are a random part of the test split the
    manifest's accuracy was measured on: the file must score that figure on them, within the
    95% sampling noise of 1,000 images (about 2 points at 88%)."""
    model = reslab.create_model(name.split(".")[0], pretrained=name.split(".")[1])
    cfg = model.pretrained_cfg
    accuracy, claimed = _accuracy(model, data_dir, cfg["mean"], cfg["std"]), cfg["test_acc"]
    assert abs(accuracy - claimed) <= 1.96 * math.sqrt(claimed * (1 - claimed) / 1000)


def test_the_default_resnet20_scores_at_least_88_percent_on_the_sample(data_dir):
    """What `pretrained=True` returns, measured on the shipped sample's 1,000 test images."""
    model = reslab.create_model("resnet20", pretrained=True)
    cfg = model.pretrained_cfg
    assert _accuracy(model, data_dir, cfg["mean"], cfg["std"]) >= 0.88


# -- scripts/ship_weights.py: a finished run becomes a weights file and its manifest -------------


@pytest.mark.parametrize("val_split", [0, 100])
def test_ship_weights_turns_a_run_into_loadable_weights(val_split, tiny_config, tmp_path,
                                                        monkeypatch, capsys):  # fmt: skip
    run = reslab.fit(tiny_config(val_split=val_split), tmp_path / "run", quiet=True)
    ship = [run.run_dir, "--tag", "t", "--into", tmp_path / "w", "--dataset", "the sample",
            "--device", "a CPU", "--commit", "abc1234", "--recipe", "tiny",
            "--default"]  # fmt: skip
    assert _ship_weights(*ship) == 0, capsys.readouterr().err
    manifest = json.loads((tmp_path / "w" / "small_cnn.t.json").read_text())
    assert list(manifest) == [*pretrained.MANIFEST_KEYS, *pretrained.OPTIONAL_KEYS]
    assert manifest["test_acc"] == run.summary["test_acc"] and manifest["default"] is True
    assert manifest["test_images"] == run.summary["test_images"] > 0
    assert manifest["wall_time_s"] == run.summary["wall_time_s"] and manifest["stopped_s"] == 0
    last = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert manifest["val_acc"] == (last[-1]["val_acc"] if val_split else None)
    assert ("all but 100 held out" in manifest["split"]) == bool(val_split)
    assert manifest["config"]["val_split"] == val_split and manifest["reslab_commit"] == "abc1234"

    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "w")
    pretrained.shipped.cache_clear()
    try:
        model = reslab.create_model("small_cnn", pretrained=True)
    finally:
        pretrained.shipped.cache_clear()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model(x), run.model(x))
    # The weights file keeps the run's header: copied anywhere, it still loads as what it is.
    loaded = reslab.create_model("small_cnn", weights=tmp_path / "w" / "small_cnn.t.safetensors")
    torch.testing.assert_close(loaded(x), run.model(x))

    # A new default takes over: the earlier one's manifest says so, its file is untouched.
    assert _ship_weights(*[a if a != "t" else "u" for a in ship]) == 0
    assert not json.loads((tmp_path / "w" / "small_cnn.t.json").read_text())["default"]
    assert pretrained.sha256(tmp_path / "w" / "small_cnn.t.safetensors") == manifest["sha256"]
    pretrained.shipped.cache_clear()
    try:
        assert pretrained.find("small_cnn").name == "small_cnn.u"
    finally:
        pretrained.shipped.cache_clear()


@pytest.mark.parametrize(
    "files, why",
    [([], "is not a finished run"), (["summary.json"], "has no final weights")],
    ids=["unfinished", "no-weights"],
)
def test_ship_weights_refuses_a_run_it_cannot_ship(files, why, tmp_path, capsys):
    (tmp_path / "run").mkdir()
    for name in files:
        (tmp_path / "run" / name).write_text("{}")
    code = _ship_weights(tmp_path / "run", "--tag", "t", "--dataset", "d", "--device", "d",
                         "--commit", "c", "--recipe", "r", "--into", tmp_path / "w")  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and why in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "w").exists()


def test_ship_weights_takes_stopped_time_out_of_training_time(tiny_config, tmp_path, capsys):
    run = reslab.fit(tiny_config(), tmp_path / "run", quiet=True)
    recorded = run.summary["wall_time_s"]
    ship = [run.run_dir, "--tag", "t", "--into", tmp_path / "w", "--dataset", "d", "--device",
            "d", "--commit", "c", "--recipe", "r", "--stopped-s"]  # fmt: skip
    for wrong in (-1, recorded, recorded + 60):
        assert _ship_weights(*ship, wrong) == 2
        assert "is not between 0 and the run's recorded training time" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
    assert _ship_weights(*ship, recorded / 4) == 0
    manifest = json.loads((tmp_path / "w" / "small_cnn.t.json").read_text())
    assert manifest["stopped_s"] == recorded / 4
    assert manifest["wall_time_s"] == pytest.approx(recorded * 3 / 4, abs=1e-3)


def test_shipped_weights_name_their_data_by_checksum(tiny_config, tmp_path, monkeypatch, cli):
    """A run on an image folder ships without its path; `reslab eval --pretrained NAME
    --dataset folder:DIR` then says whether DIR holds the data it was trained and tested on."""
    from reslab.data import load_dataset
    from tests.data.conftest import write_tree

    tree = write_tree(tmp_path / "mydata", per_class=40, classes=("cat", "dog"))
    # The script and the CLI decode the folder into $RESLAB_DATA: here, not the user's cache.
    monkeypatch.setenv("RESLAB_DATA", str(tmp_path / "dd"))
    config = tiny_config(dataset=f"folder:{tree}", val_split=0, data_dir=str(tmp_path / "dd"))
    run = reslab.fit(config, tmp_path / "run", quiet=True).run_dir
    # A run from before summaries counted the test images: --data counts them.
    summary = json.loads((run / "summary.json").read_text())
    del summary["test_images"]
    (run / "summary.json").write_text(json.dumps(summary))
    assert _ship_weights(run, "--tag", "t", "--into", tmp_path / "w", "--dataset", "my data",
                         "--device", "d", "--commit", "c", "--recipe", "r",
                         "--data", tree) == 0  # fmt: skip
    manifest = (tmp_path / "w" / "small_cnn.t.json").read_text()
    assert json.loads(manifest)["test_images"] == len(list((tree / "test").rglob("*.jpg")))
    assert str(tmp_path) not in manifest and '"dataset": "folder:mydata"' in manifest
    assert str(tmp_path).encode() not in (tmp_path / "w" / "small_cnn.t.safetensors").read_bytes()
    digests = load_dataset(f"folder:{tree}", tmp_path / "dd").digests
    assert json.loads(manifest)["data_digests"] == digests

    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "w")
    pretrained.shipped.cache_clear()
    monkeypatch.chdir(tmp_path)
    try:
        same = cli("eval", "--pretrained", "small_cnn", "--dataset", f"folder:{tree}")
        (tree / "test" / "cat" / "0000.jpg").unlink()
        other = cli("eval", "--pretrained", "small_cnn", "--dataset", f"folder:{tree}")
        (tmp_path / "mydata").rename(tmp_path / "elsewhere")
        missing = cli("eval", "--pretrained", "small_cnn")
    finally:
        pretrained.shipped.cache_clear()
    assert f"folder:{tree}: the same images as the model's test split" in same.stdout
    assert "top-5" not in same.stdout  # two classes: every image is in its top 5
    assert "NOT the same images as the model's test split" in other.stdout
    assert missing.returncode == 2 and "trained on the image folder 'mydata'" in missing.stderr
    assert f"(test data checksum {digests['test'][:12]})" in missing.stderr


def _ship_weights(*argv) -> int:
    """scripts/ship_weights.py, run in this process as `python scripts/ship_weights.py ARGV`."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ship_weights", ROOT / "scripts/ship_weights.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script.main([str(a) for a in argv])


# -- the mechanism, on a weights folder of this test's own --------------------------------------


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    """A weights folder holding resnet20.test (default) and resnet20.other, freshly made."""
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    pretrained.shipped.cache_clear()
    config = reslab.build_config({"dataset": "cifar10-sample", "epochs": 1}).to_dict()
    for tag, default, seed in (("test", True, 0), ("other", False, 1)):
        torch.manual_seed(seed)
        state = reslab.create_model("resnet20").state_dict()
        path = tmp_path / f"resnet20.{tag}.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
        manifest = {key: None for key in pretrained.MANIFEST_KEYS}
        manifest.update(
            schema=pretrained.SCHEMA,
            model="resnet20",
            tag=tag,
            default=default,
            sha256=pretrained.sha256(path),
            classes=CLASSES,
            mean=[0.5] * 3,
            std=[0.25] * 3,
            in_channels=3,
            image_size=[32, 32],
            config=config,
            test_acc=0.9,
        )
        (tmp_path / f"resnet20.{tag}.json").write_text(json.dumps(manifest))
    yield tmp_path
    pretrained.shipped.cache_clear()


def test_pretrained_true_takes_the_default_tag_and_tags_pick_others(weights_dir):
    default = reslab.create_model("resnet20", pretrained=True)
    assert not default.training and default.pretrained_cfg["mean"] == [0.5] * 3
    other = reslab.create_model("resnet20", pretrained="other")
    by_name = reslab.create_model("resnet20.other", pretrained=True)
    x = torch.randn(2, 3, 32, 32)
    assert not torch.equal(default(x), other(x))
    torch.testing.assert_close(other(x), by_name(x))


def test_a_file_whose_checksum_differs_is_refused(weights_dir):
    path = weights_dir / "resnet20.test.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        reslab.create_model("resnet20", pretrained=True)


def test_models_without_weights_and_unknown_tags_are_named(weights_dir):
    with pytest.raises(ConfigError, match="no pretrained weights ship for 'resnet56'.*resnet20"):
        reslab.create_model("resnet56", pretrained=True)
    with pytest.raises(ConfigError, match="resnet20 has: resnet20.other, resnet20.test"):
        reslab.create_model("resnet20", pretrained="nope")
    with pytest.raises(ConfigError, match="10 classes, not 100"):
        reslab.create_model("resnet20", pretrained=True, num_classes=100)


def test_trained_weights_fix_the_architecture(weights_dir, tmp_path):
    with pytest.raises(ConfigError, match="norm, shortcut_pad: set by the trained weights"):
        reslab.create_model("resnet20", pretrained=True, norm="groupnorm", shortcut_pad="after")
    with pytest.raises(ConfigError, match="in_channels: set by the trained weights"):
        reslab.create_model("resnet20", weights=tmp_path / "x.th", in_channels=1)
    with pytest.raises(ConfigError, match="pretrained or weights, not both"):
        reslab.create_model("resnet20", pretrained=True, weights=tmp_path / "x.th")


def test_a_reslab_weights_file_keeps_its_classes(tmp_path):
    from reslab.run.checkpoint import save_weights

    torch.manual_seed(0)
    net = reslab.create_model("resnet20").eval()
    meta = {"data": {"classes": CLASSES, "mean": [0.5] * 3, "std": [0.25] * 3,
                     "in_channels": 3, "image_size": [32, 32]},
            "config": reslab.build_config({"dataset": "cifar10-sample"}).to_dict()}  # fmt: skip
    path = save_weights(tmp_path / "model.safetensors", net.state_dict(), meta)
    loaded = reslab.create_model("resnet20", weights=path)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded(x), net(x))
    assert (
        loaded.pretrained_cfg["classes"] == CLASSES and loaded.pretrained_cfg["std"] == [0.25] * 3
    )
    with pytest.raises(ConfigError, match="has 10 classes, not 100"):
        reslab.create_model("resnet20", weights=path, num_classes=100)


def test_a_missing_weights_file_is_one_line(weights_dir):
    (weights_dir / "resnet20.test.safetensors").unlink()
    with pytest.raises(CheckpointError, match="cannot be read") as e:
        reslab.create_model("resnet20", pretrained=True)
    assert "\n" not in str(e.value)


def test_manifests_must_name_their_file_and_one_default(weights_dir):
    other = weights_dir / "resnet20.other.json"
    manifest = json.loads(other.read_text())
    other.write_text(json.dumps({**manifest, "default": True}))
    pretrained.shipped.cache_clear()
    with pytest.raises(
        ValueError, match="more than one default tag: resnet20.other, resnet20.test"
    ):
        pretrained.shipped()
    other.write_text(json.dumps({**manifest, "tag": "renamed"}))
    pretrained.shipped.cache_clear()
    with pytest.raises(ValueError, match="names resnet20.renamed, not resnet20.other"):
        pretrained.shipped()


def test_cli_eval_and_predict_take_pretrained_names(weights_dir, cli, tmp_path):
    from tests.conftest import sample_jpegs

    image = tmp_path / "cat.jpg"
    image.write_bytes(sample_jpegs("test")["cat"][0])
    ev = cli("eval", "--pretrained", "resnet20", "--dataset", "cifar10-sample", "--out",
             tmp_path / "ev")  # fmt: skip
    assert ev.returncode == 0, ev.stderr
    assert json.loads((tmp_path / "ev" / "eval.json").read_text())["count"] == 1000
    pr = cli("predict", "--pretrained", "resnet20.other", image, "--json")
    assert pr.returncode == 0 and json.loads(pr.stdout)[0]["image"] == str(image)
    bad = cli("predict", "--pretrained", "resnet56", image)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "models that have them: resnet20" in bad.stderr
    tv = cli("predict", "--pretrained", "resnet18", image)
    assert tv.returncode == 2 and "load in Python" in tv.stderr
    both = cli("eval", tmp_path / "ev", "--pretrained", "resnet20")
    assert both.returncode == 2 and "give one of a model" in both.stderr
    data = bytearray((weights_dir / "resnet20.test.safetensors").read_bytes())
    data[-1] ^= 1
    (weights_dir / "resnet20.test.safetensors").write_bytes(bytes(data))
    damaged = cli("predict", "--pretrained", "resnet20", image)
    assert damaged.returncode == 2 and damaged.stderr.count("\n") == 1
    assert "sha256" in damaged.stderr


def test_torch_hub_loads_locally_and_lists_only_models(weights_dir, tmp_path, monkeypatch):
    # torch.hub.list reads GitHub repositories only; with this checkout in its cache under the
    # name it would give a fetched "reslab/reslab:main", it lists it without any network.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "reslab_reslab_main").symlink_to(ROOT)
    entries = torch.hub.list("reslab/reslab:main", trust_repo=True, skip_validation=True)
    assert sorted(entries) == sorted(reslab.list_models())
    model = torch.hub.load(str(ROOT), "resnet20", source="local", pretrained=True)
    assert model.pretrained_cfg["classes"] == CLASSES


def test_imagenet_weights_come_from_the_hub_cache_or_fail_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="not in the torch hub cache") as e:
        reslab.create_model("resnet18", pretrained=True)
    assert "\n" not in str(e.value)
    # With the file in the cache (here: torchvision's resnet18 with its own random init, saved
    # under the released file name), it loads without any download.
    import torchvision

    name = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[1]
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    tv = torchvision.models.resnet18()
    torch.save(tv.state_dict(), tmp_path / "hub" / "checkpoints" / name)
    ours = reslab.create_model("resnet18", pretrained=True)
    x = torch.randn(1, 3, 224, 224)
    torch.testing.assert_close(ours(x), tv.eval()(x), atol=1e-5, rtol=1e-5)
    assert len(ours.pretrained_cfg["classes"]) == 1000


# -- other people's checkpoints ----------------------------------------------------------------


def _reference_style(path: Path, depth: int = 20) -> torch.nn.Module:
    """A checkpoint in the public reproduction's format (DataParallel keys, a `linear`
    classifier, no BN update counters), made from a seeded reslab network with trained-looking
    BN statistics. Returns that network, in eval mode."""
    torch.manual_seed(depth)
    net = reslab.create_model(f"resnet{depth}")
    with torch.no_grad():
        net(torch.randn(16, 3, 32, 32))  # running statistics away from their init
    state = {}
    for key, value in net.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            key = "linear." + key.removeprefix("fc.") if key.startswith("fc.") else key
            state[f"module.{key}"] = value
    torch.save({"state_dict": state, "best_prec1": 91.7}, path)
    return net.eval()


def test_the_reference_format_converts_key_for_key(tmp_path, data_dir):
    for depth in (20, 32):
        net = _reference_style(tmp_path / f"r{depth}.th", depth)
        ours = reslab.create_model(f"resnet{depth}", weights=tmp_path / f"r{depth}.th")
        x = torch.randn(3, 3, 32, 32)
        torch.testing.assert_close(ours(x), net(x))
        assert ours.pretrained_cfg["std"] == [0.229, 0.224, 0.225]
    with pytest.raises(CheckpointError, match="holds a resnet20, not a resnet56"):
        reslab.create_model("resnet56", weights=tmp_path / "r20.th")
    loaded = reslab.load(tmp_path / "r20.th")
    assert loaded.config.shortcut_pad == "both" and loaded.config.val_split == 0
    # Nothing of its training split was held out here: no "validation" made of training images.
    with pytest.raises(UserError, match="no validation split"):
        reslab.evaluate(loaded, dataset="cifar10-sample", split="val", data_dir=str(data_dir))


def test_a_model_trained_on_a_folder_that_is_gone_asks_for_a_data_set(tiny_config, tmp_path):
    from reslab.run.checkpoint import save_weights

    config = {**tiny_config().to_dict(), "dataset": f"folder:{tmp_path / 'gone'}"}
    meta = {"config": config, "data": {"classes": CLASSES, "mean": [0.5] * 3, "std": [0.25] * 3,
                                       "in_channels": 3, "image_size": [32, 32]}}  # fmt: skip
    model = reslab.create_model(config["model"], in_channels=3, image_size=(32, 32))
    path = save_weights(tmp_path / "model.safetensors", model.state_dict(), meta)
    with pytest.raises(UserError, match="which is not here; name the data set"):
        reslab.evaluate(path)


@needs_reference
def test_reference_checkpoint_loads_with_its_normalization(data_dir):
    model = reslab.create_model("resnet20", weights=REFERENCE)
    cfg = model.pretrained_cfg
    assert cfg["mean"] == [0.485, 0.456, 0.406] and cfg["classes"] == CLASSES
    # 81.0% on the full JPEG test set (shared README); the sample's 1,000 of them: >= 77%.
    assert _accuracy(model, data_dir, cfg["mean"], cfg["std"]) >= 0.77
    with pytest.raises(CheckpointError, match="holds a resnet20, not a resnet32"):
        reslab.create_model("resnet32", weights=REFERENCE)


@needs_reference
def test_reference_checkpoint_eval_predict_and_export_agree(cli, tmp_path):
    import numpy as np
    import onnxruntime as ort

    from tests.conftest import sample_jpegs

    images = []
    for cls in ("cat", "ship", "frog"):
        path = tmp_path / f"{cls}.jpg"
        path.write_bytes(sample_jpegs("test")[cls][0])
        images.append(path)
    ev = cli("eval", REFERENCE, "--dataset", "cifar10-sample", "--out", tmp_path / "ev")
    assert ev.returncode == 0, ev.stderr
    assert json.loads((tmp_path / "ev" / "eval.json").read_text())["top1"] >= 0.77
    pr = cli("predict", REFERENCE, *images, "--json", "--top-k", "1")
    assert pr.returncode == 0, pr.stderr
    predicted = [p["top"][0]["class"] for p in json.loads(pr.stdout)]
    onnx = tmp_path / "ref.onnx"
    ex = cli("export", REFERENCE, "--format", "onnx", "--fold-bn", "--out", onnx)
    assert ex.returncode == 0, ex.stderr
    loaded = reslab.load(REFERENCE)
    from reslab.infer.predict import load_images

    # The exported graph takes the raw [0, 1] images and normalizes them itself.
    raw = load_images(images, loaded.data)
    mean, std = (torch.tensor(loaded.data[k]).view(1, -1, 1, 1) for k in ("mean", "std"))
    expected = loaded.model((raw - mean) / std).detach().numpy()
    session = ort.InferenceSession(str(onnx))
    got = session.run(None, {session.get_inputs()[0].name: raw.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)
    assert json.loads(session.get_modelmeta().custom_metadata_map["classes"]) == CLASSES
    assert [CLASSES[i] for i in got.argmax(1)] == predicted


def test_unknown_torch_files_are_refused_in_one_line(tmp_path, cli):
    torch.save({"weights": [1, 2, 3]}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="not a state dict of tensors nor a known") as e:
        reslab.create_model("resnet20", weights=tmp_path / "odd.pt")
    assert "\n" not in str(e.value)
    shutil.copy(tmp_path / "odd.pt", tmp_path / "odd2.pt")
    r = cli("eval", tmp_path / "odd2.pt")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
