"""The datasets through TensorFlow Datasets: our four builders, TFDS's binarized_mnist and mnist.

Every TFDS ``data_dir`` is under ``tmp_path``; nothing is downloaded (file:// URLs stand in
for the canonical ones). Real-data tests skip when ../shared/data lacks the files, except
under CI (``CI`` set), where they fail.
"""
import gzip
import hashlib
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import checksums as tfds_checksums
from tensorflow_datasets.image_classification import mnist as tfds_mnist

from conftest import REPO_ROOT, SHARED_DATA
from test_datasets import (chardata_columns, idx_bytes, make_small_histopathology, make_small_omniglot, shared,
                           split_sizes, write_histopathology)
from tfvamp import datasets
from tfvamp.datasets import (DatasetError, download, dynamic_mnist, freyfaces, histopathology, readers, static_mnist,
                             tfds_loading)

SPLITS = ("train", "validation", "test")

# SHA-256 of the float32 arrays load_dataset(name, ../shared/data) returned before the TFDS builders
# existed (tfvamp commit 20fd714), split by split.
RECORDED = {
    "caltech": ("60a1e764a68cd004bb1492220404fab5345e6284d6ff819ce883d3c4a79ffebb",
                "fc7ee1a7a273d7d7982695ad6680dee391e3a79e043e46e095910d0d728320a6",
                "f8e649e6c57b0af8d44a0d568c1ec910a090b7a24a8403924ae31f4dd6aab949"),
    "freyfaces": ("435309158da4b4c352f431ad089de86402fa060ea67ee71629e910905f43c225",
                  "3b026817294bf1fb635633e90c89d047c889a2c0292bbacb878f994982254a7d",
                  "67f9f70863c2c1cd2176561c622cab63487ad6b2c6a691acb632a3d186e3e9b7"),
    "static_mnist": ("fdfc5f2662071f3fed0f72e1957f0082bf11b987b772a4756c061b371d552fc7",
                     "300eed18a1ad9a354750a237a67bc2e44059a5acc409024f706f57a8429bbdeb",
                     "c263af618bc1ec7723a06777b7c2c142b514f38c552408e2a87bfeccf87feda9"),
    "dynamic_mnist": ("c323bbe66689595489df08ed4bfdef7be25a29e0215fce7338c3f979902ac157",
                      "9b09ebef45ed620b0e27d545d64edfc01f4b0efb537a1f8e34389cc0324a62cb",
                      "110ca8a34972c7572edc0bf1dfb63aa6d084413ffce9251ac6d4262915a45ef4"),
}


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """No test reads TFVAMP_DATA_DIR or writes into the real cache."""
    monkeypatch.delenv(download.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv(download.CACHE_DIR_ENV, str(tmp_path / "cache"))


def digest(array):
    return hashlib.sha256(np.ascontiguousarray(array, np.float32).tobytes()).hexdigest()


def assert_matches_recorded(dataset, name):
    assert tuple(digest(dataset.split(split)) for split in SPLITS) == RECORDED[name]


def tfds_load(name, tfds_dir, manual_dir=None):
    """All splits of ``name`` as NumPy, prepared into ``tfds_dir`` (from ``manual_dir`` if given)."""
    config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    return tfds.as_numpy(tfds.load(name, data_dir=str(tfds_dir), batch_size=-1,
                                   download_and_prepare_kwargs={"download_config": config}))


def assert_same_splits(dataset, other):
    for split in SPLITS:
        np.testing.assert_array_equal(dataset.split(split), other.split(split))


# ---------------------------------------------------------------- registration and metadata


def test_import_tfvamp_registers_builders_and_caltech_needs_no_download(tmp_path):
    """In a fresh interpreter: ``import tfvamp``, then ``tfds.load`` of Caltech from the embedded file."""
    script = ("import hashlib, sys, numpy as np, tensorflow_datasets as tfds, tfvamp\n"
              "ds = tfds.as_numpy(tfds.load('caltech101_silhouettes', split='test', data_dir=sys.argv[1], "
              "batch_size=-1))\n"
              "print(len(ds['image']), hashlib.sha256(ds['image'].astype(np.float32).tobytes()).hexdigest())\n")
    env = dict(os.environ, TFVAMP_CACHE_DIR=str(tmp_path / "cache"))
    env.pop(download.DATA_DIR_ENV, None)
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "tfds")], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-2:] == ["2307", RECORDED["caltech"][2]]
    assert not (tmp_path / "cache").exists()  # nothing downloaded


@pytest.mark.parametrize("name, file_name", [
    ("caltech101_silhouettes", "caltech101_silhouettes_28_split1.mat"), ("frey_faces", "freyfaces.pkl"),
    ("omniglot_chardata", "chardata.mat"), ("histopathology_gray", "histopathology.pkl.tar.gz")])
def test_builders_have_metadata(tmp_path, name, file_name):
    builder = tfds.builder(name, data_dir=str(tmp_path))
    info = builder.info
    assert str(info.version) == "1.0.0" and info.disable_shuffling
    assert info.description and info.citation.startswith("@") and info.homepage.startswith("https://")
    instructions = builder.MANUAL_DOWNLOAD_INSTRUCTIONS
    assert file_name in instructions and "../shared/data" in instructions
    assert name in datasets.TFDS_NAMES.values()


def test_caltech_labels_and_class_names(tmp_path):
    examples = tfds_load("caltech101_silhouettes", tmp_path)
    names = tfds.builder("caltech101_silhouettes", data_dir=str(tmp_path)).info.features["label"].names
    assert len(names) == 101 and names[0] == "Airplanes Side 2"
    labels = np.concatenate([examples[split]["label"] for split in SPLITS])
    assert labels.min() == 0 and labels.max() == 100 and len(np.unique(labels)) == 101


# ---------------------------------------------------------------- real files, offline, from ../shared/data


@pytest.mark.parametrize("name, folder, file_name, counts, preprocess", [
    ("caltech", "caltech101_silhouettes", "caltech101_silhouettes_28_split1.mat", (4100, 2264, 2307),
     lambda x: x.astype(np.float32)),
    ("freyfaces", "freyfaces", "freyfaces.pkl", (1565, 200, 200),
     lambda x: (x.astype(np.float32) + 0.5) / 256),
])
def test_tfds_load_from_shared_data_matches_load_dataset(tmp_path, name, folder, file_name, counts, preprocess):
    shared(folder, file_name)
    examples = tfds_load(datasets.TFDS_NAMES[name], tmp_path / "tfds", SHARED_DATA)
    assert tuple(len(examples[split]["image"]) for split in SPLITS) == counts
    before = datasets.load_dataset(name, SHARED_DATA)
    for split, recorded in zip(SPLITS, RECORDED[name]):
        images = preprocess(examples[split]["image"])
        np.testing.assert_array_equal(images, before.split(split))
        assert digest(images) == recorded
    through_tfds = datasets.load_from_tfds(name, str(tmp_path / "tfds"))  # already prepared: no manual_dir needed
    assert_matches_recorded(through_tfds, name)
    assert (through_tfds.likelihood, through_tfds.pseudo_inputs_init) == (before.likelihood, before.pseudo_inputs_init)


@pytest.mark.slow
def test_static_mnist_through_tfds_binarized_mnist_from_shared_data(tmp_path):
    """TFDS's own builder, prepared offline from the .npz: its checksums validate the written .amat files."""
    shared("binarized_mnist", static_mnist.NPZ)
    dataset = datasets.load_from_tfds("static_mnist", str(tmp_path / "tfds"), SHARED_DATA)
    assert split_sizes(dataset) == (50000, 10000, 10000)
    assert_matches_recorded(dataset, "static_mnist")
    assert not dataset.dynamic_binarization and dataset.pseudo_inputs_init == (0.05, 0.01)
    # The bare tfds.load gives the same images, in TFDS's order.
    written = tfds.as_numpy(tfds.load("binarized_mnist", split="test", data_dir=str(tmp_path / "tfds"),
                                      batch_size=-1))["image"]
    np.testing.assert_array_equal(tfds_loading.file_order(written, "test").astype(np.float32), dataset.test)
    assert not np.array_equal(written.astype(np.float32), dataset.test)


# ---------------------------------------------------------------- TFDS's recorded checksums are ours


def test_our_checksums_are_the_ones_tfds_records_for_binarized_mnist_and_mnist():
    binarized = tfds.builder_cls("binarized_mnist").url_infos
    for split, (file_split, _, sha256, size) in static_mnist.SPLITS.items():
        info = binarized[static_mnist.URL + static_mnist.amat_name(split)]
        assert (info.checksum, int(info.size), info.filename) == (sha256, size, f"binarized_mnist_{file_split}.amat")
    mnist_infos = tfds.builder_cls("mnist").url_infos
    assert dynamic_mnist.URLS[0] == tfds_mnist._MNIST_URL
    for stem, (_, _, gz_sha256, gz_size) in dynamic_mnist.FILES.items():
        info = mnist_infos[dynamic_mnist.URLS[0] + stem + ".gz"]
        assert (info.checksum, int(info.size)) == (gz_sha256, gz_size)


def test_amat_files_written_from_shared_npz_are_larochelles(tmp_path):
    shared("binarized_mnist", static_mnist.NPZ)
    tfds_loading.write_amat_files(SHARED_DATA, str(tmp_path))
    recorded = tfds.builder_cls("binarized_mnist").url_infos
    for name in sorted(os.listdir(tmp_path)):
        assert tfds_checksums.compute_url_info(tmp_path / name) == recorded[static_mnist.URL + name]


# ---------------------------------------------------------------- dynamic MNIST through TFDS's mnist


def gzip_files(target, files):
    """``{canonical .gz name: bytes}`` -> gzip files in ``target``, with TFDS url infos for TFDS's mnist."""
    target.mkdir(parents=True, exist_ok=True)
    infos = {}
    for name, data in files.items():
        (target / name).write_bytes(gzip.compress(data, compresslevel=1, mtime=0))
        infos[tfds_mnist._MNIST_URL + name] = tfds_checksums.compute_url_info(target / name)
    return infos


def stand_in_for_canonical_mnist(monkeypatch, manual_dir, images, labels):
    """TFDS checks the SHA-256 of the canonical .gz files, which are not here (only their uncompressed
    content): gzip the content and make TFDS's mnist builder expect these gzips instead."""
    files = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        files[f"{prefix}-images-idx3-ubyte.gz"] = idx_bytes(images[split])
        label_header = struct.pack(">ii", 0x00000801, len(labels[split]))
        files[f"{prefix}-labels-idx1-ubyte.gz"] = label_header + labels[split].tobytes()
    monkeypatch.setattr(tfds.builder_cls("mnist"), "url_infos", gzip_files(manual_dir, files))


def test_dynamic_mnist_through_tfds_mnist_small(tmp_path, monkeypatch):
    """Our split (the last images of the file for validation) and binarisation on top of TFDS's mnist."""
    rng = np.random.default_rng(4)
    images = {"train": rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
              "test": rng.integers(0, 256, (8, 28, 28), dtype=np.uint8)}
    labels = {split: rng.integers(0, 10, len(images[split]), dtype=np.uint8) for split in images}
    stand_in_for_canonical_mnist(monkeypatch, tmp_path / "manual", images, labels)
    monkeypatch.setattr(tfds_mnist, "_TRAIN_EXAMPLES", 30)
    monkeypatch.setattr(tfds_mnist, "_TEST_EXAMPLES", 8)
    monkeypatch.setattr(dynamic_mnist, "NUM_VALIDATION", 6)
    monkeypatch.setattr(dynamic_mnist, "FILES", {
        stem: (len(images[split]), hashlib.sha256(idx_bytes(images[split])).hexdigest(), None, None)
        for split, stem in (("train", "train-images-idx3-ubyte"), ("test", "t10k-images-idx3-ubyte"))})
    through_tfds = datasets.load_from_tfds("dynamic_mnist", str(tmp_path / "tfds"), str(tmp_path / "manual"))
    from_files = datasets.load_dataset("dynamic_mnist", str(tmp_path / "manual"))  # the same .gz, read directly
    assert split_sizes(through_tfds) == (24, 6, 8) and through_tfds.dynamic_binarization
    assert_same_splits(through_tfds, from_files)
    np.testing.assert_array_equal(through_tfds.train[..., 0], images["train"][:24] / np.float32(255))


@pytest.mark.slow
def test_dynamic_mnist_through_tfds_mnist_real(tmp_path, monkeypatch):
    """TFDS's mnist builder on the real (re-gzipped) files gives load_dataset's arrays, split and binarised."""
    images, labels = {}, {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images[split] = readers.idx_images(readers.read_bytes(shared("mnist", f"{prefix}-images.idx3-ubyte")), split)
        with open(shared("mnist", f"{prefix}-labels.idx1-ubyte"), "rb") as f:
            labels[split] = np.frombuffer(f.read(), np.uint8, offset=8)
    stand_in_for_canonical_mnist(monkeypatch, tmp_path / "manual", images, labels)
    dataset = datasets.load_from_tfds("dynamic_mnist", str(tmp_path / "tfds"), str(tmp_path / "manual"))
    assert split_sizes(dataset) == (50000, 10000, 10000)
    assert_matches_recorded(dataset, "dynamic_mnist")


def test_mnist_manual_dir_without_the_canonical_gz_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match=r"canonical .*train-images-idx3-ubyte.gz.*SHA-256.*load_dataset"):
        datasets.load_from_tfds("dynamic_mnist", str(tmp_path / "tfds"), SHARED_DATA)


# ---------------------------------------------------------------- OMNIGLOT and histopathology, small files


def test_omniglot_builder_small_chardata(tmp_path, monkeypatch):
    path, images = make_small_omniglot(tmp_path, monkeypatch)
    local = str(path.parent.parent)
    examples = tfds_load("omniglot_chardata", tmp_path / "tfds", local)
    assert tuple(len(examples[split]["image"]) for split in SPLITS) == (35, 5, 12)
    assert examples["train"]["image"].dtype == np.float32
    np.testing.assert_array_equal(examples["test"]["image"][..., 0], images[40:])  # upright, in file order
    before = datasets.load_dataset("omniglot", local)
    np.testing.assert_array_equal(examples["train"]["image"], before.train)  # grey; binarised every epoch
    assert_same_splits(datasets.load_from_tfds("omniglot", str(tmp_path / "tfds")), before)


def test_histopathology_builder_small_archive(tmp_path, monkeypatch):
    small_histopathology = make_small_histopathology(monkeypatch)
    write_histopathology(tmp_path / "local" / "histopathology", small_histopathology, archive=True)
    examples = tfds_load("histopathology_gray", tmp_path / "tfds", tmp_path / "local")
    assert tuple(len(examples[split]["image"]) for split in SPLITS) == (6, 3, 2)
    for split, key in zip(SPLITS, ("training", "validation", "test")):  # the file's values, unclipped
        np.testing.assert_array_equal(examples[split]["image"].reshape(-1, 784), small_histopathology[key])
    before = datasets.load_dataset("histopathology", str(tmp_path / "local"))
    assert_same_splits(datasets.load_from_tfds("histopathology", str(tmp_path / "tfds")), before)


def test_without_manual_dir_the_file_is_downloaded_into_the_tfvamp_cache(tmp_path, monkeypatch):
    write_histopathology(tmp_path / "server", make_small_histopathology(monkeypatch), archive=True)
    monkeypatch.setattr(histopathology, "URL", (tmp_path / "server" / histopathology.ARCHIVE).as_uri())
    examples = tfds_load("histopathology_gray", tmp_path / "tfds")
    assert len(examples["train"]["image"]) == 6
    assert os.listdir(tmp_path / "cache" / "histopathology") == [histopathology.ARCHIVE]


# ---------------------------------------------------------------- errors through TFDS


def test_tfds_errors_are_our_clear_errors_and_leave_nothing_prepared(tmp_path, monkeypatch):
    path, images = make_small_omniglot(tmp_path, monkeypatch)
    bad = tmp_path / "bad"
    (bad / "freyfaces").mkdir(parents=True)
    (bad / "freyfaces" / freyfaces.FILENAME).write_bytes(b"not the faces")
    with pytest.raises(DatasetError, match="Checksum mismatch for .*freyfaces.pkl"):
        tfds_load("frey_faces", tmp_path / "tfds", bad)
    assert not tfds.builder("frey_faces", data_dir=str(tmp_path / "tfds")).is_prepared()
    with pytest.raises(DatasetError, match=r"chardata.mat not found.*yburda/iwae"):
        tfds_load("omniglot_chardata", tmp_path / "tfds", bad)  # a manual dir without the file
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(DatasetError, match="chardata.mat is not a readable MATLAB file"):
        tfds_load("omniglot_chardata", tmp_path / "tfds", path.parent.parent)
    scipy.io.savemat(path, {"data": chardata_columns(images[:40])})
    with pytest.raises(DatasetError, match="no variable 'testdata'"):
        tfds_load("omniglot_chardata", tmp_path / "tfds", path.parent.parent)


def test_load_from_tfds_rejects_unknown_names():
    with pytest.raises(ValueError, match="Unknown dataset 'mnist'"):
        datasets.load_from_tfds("mnist")
