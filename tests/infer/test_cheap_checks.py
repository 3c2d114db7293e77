"""`reslab eval` runs every check that needs no pixels before it decodes any, and evaluation needs
only the split it evaluates. In-process through the CLI's `main`, on real files."""

from tests.conftest import CLASSES, sample_jpegs

FASHION_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def test_other_classes_are_refused_before_anything_is_decoded_or_cached(
    cli, finished_run, tmp_path
):
    data = tmp_path / "data"
    data.mkdir()
    for name in FASHION_FILES:  # unreadable as images: decoding them would fail otherwise
        (data / name).write_bytes(b"not decoded")
    r = cli("eval", finished_run, "--dataset", "fashion-mnist", "--data-dir", data)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "has classes [T-shirt/top, Trouser, Pullover, Dress, ...]" in r.stderr
    assert "trained on [airplane, automobile, bird, cat, ...]" in r.stderr
    assert sorted(p.name for p in data.iterdir()) == sorted(FASHION_FILES)  # no cache written
    assert "decod" not in r.stdout


def _test_only_tree(root, per_class=3):
    jpegs = sample_jpegs("test")
    for name in CLASSES:
        folder = root / "test" / name
        folder.mkdir(parents=True)
        for i, data in enumerate(jpegs[name][:per_class]):
            (folder / f"{i}.jpg").write_bytes(data)
    return root


def test_a_tree_of_test_images_alone_evaluates(cli, run_copy, tmp_path):
    tree = _test_only_tree(tmp_path / "imgs")
    r = cli("eval", run_copy, "--dataset", f"folder:{tree}", "--data-dir", tmp_path / "dd")
    assert r.returncode == 0, r.stderr
    assert "(30 images)" in r.stdout and "decoded folder:" in r.stdout
    r = cli("eval", run_copy, "--dataset", f"folder:{tree}", "--split", "val")
    assert r.returncode == 2 and "has no train/ subfolder" in r.stderr  # val needs train/


def test_nothing_is_said_of_decoding_when_there_is_nothing_to_decode(cli, run_copy, tmp_path):
    tree = _test_only_tree(tmp_path / "imgs")
    from PIL import Image

    Image.new("RGB", (40, 40)).save(tree / "test" / "cat" / "big.png")
    r = cli("eval", run_copy, "--dataset", f"folder:{tree}", "--data-dir", tmp_path / "dd")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "big.png is 40x40 pixels but most images are 32x32" in r.stderr
    assert "decod" not in r.stdout
