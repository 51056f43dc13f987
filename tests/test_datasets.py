"""Dataset loaders: real files in ../shared/data, format-faithful small files, every error path.

Real-data tests skip when the data is missing, except under CI (``CI`` set), where they fail.
"""
import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile

import keras
import numpy as np
import pytest
import scipy.io

from conftest import REPO_ROOT, SHARED_DATA
from tfvamp import datasets
from tfvamp.datasets import (DatasetError, caltech, download, dynamic_mnist, freyfaces, histopathology,
                             omniglot, readers, static_mnist)


def shared(*parts):
    """Path of a real data file; skips if missing, or fails if ``CI`` is set."""
    path = os.path.join(SHARED_DATA, *parts)
    if not os.path.exists(path):
        message = f"real data file missing: {path}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set, so the real-data tests must run)")
        pytest.skip(message)
    return path


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """No test reads TFVAMP_DATA_DIR or writes into the real cache."""
    monkeypatch.delenv(download.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv(download.CACHE_DIR_ENV, str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def static():
    shared("binarized_mnist", static_mnist.NPZ)
    return datasets.load_dataset("static_mnist", SHARED_DATA)


@pytest.fixture(scope="module")
def dynamic():
    shared("mnist", "train-images.idx3-ubyte")
    return datasets.load_dataset("dynamic_mnist", SHARED_DATA)


def split_sizes(dataset):
    return tuple(len(dataset.split(split)) for split in ("train", "validation", "test"))


def first_batch(dataset, split, batch_size=500):
    return next(iter(dataset.pipeline(split, batch_size))).numpy()


def is_binary(x):
    return bool(np.all((x == 0) | (x == 1)))


# ---------------------------------------------------------------- real files


def test_caltech_real_splits_and_embedded_copy_agree():
    shared("caltech101_silhouettes", caltech.FILENAME)
    local, embedded = datasets.load_dataset("caltech", SHARED_DATA), datasets.load_dataset("caltech")
    assert split_sizes(local) == (4100, 2264, 2307)
    assert local.input_shape == (28, 28, 1) and local.likelihood == "bernoulli"
    assert local.pseudo_inputs_init == (0.5, 0.02) and not local.dynamic_binarization
    assert all(is_binary(local.split(s)) for s in ("train", "validation", "test"))
    assert 0.4 < local.train.mean() < 0.5  # object = 1 on a 0 background
    np.testing.assert_array_equal(local.test, embedded.test)


def test_freyfaces_real_splits_and_grey_values():
    shared("freyfaces", freyfaces.FILENAME)
    data, again = datasets.load_dataset("freyfaces", SHARED_DATA), datasets.load_dataset("freyfaces", SHARED_DATA)
    assert split_sizes(data) == (1565, 200, 200)
    assert data.input_shape == (28, 20, 1) and data.likelihood == "discretized_logistic"
    assert data.pseudo_inputs_init == (0.5, 0.02)
    every = np.concatenate([data.train, data.validation, data.test])
    assert every.dtype == np.float32 and every.min() >= 0.5 / 256 and every.max() <= 255.5 / 256
    np.testing.assert_array_equal(np.round(every * 256 - 0.5), every * 256 - 0.5)  # (x + 0.5) / 256
    np.testing.assert_array_equal(data.test, again.test)  # the shuffle is seeded


def test_static_mnist_real_is_fixed_binary(static):
    assert split_sizes(static) == (50000, 10000, 10000)
    assert static.input_shape == (28, 28, 1) and static.likelihood == "bernoulli"
    assert static.pseudo_inputs_init == (0.05, 0.01) and not static.dynamic_binarization
    assert all(is_binary(static.split(s)) for s in ("train", "validation", "test"))
    np.testing.assert_allclose([static.train.mean(), static.validation.mean(), static.test.mean()],
                               [0.13056, 0.13113, 0.13251], atol=5e-5)
    np.testing.assert_array_equal(first_batch(static, "train"), static.train[:500])  # no re-binarisation


def write_amat(path, images):
    """Larochelle's layout: a line of 784 space-separated 0/1 digits per image."""
    chars = np.full((len(images), 2 * 784), ord(" "), np.uint8)
    chars[:, 0::2] = images.reshape(len(images), 784) + ord("0")
    chars[:, -1] = ord("\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(chars.tobytes())


def test_static_mnist_from_amat_files_matches_npz_and_canonical_checksums(static, tmp_path):
    for split in ("train", "validation", "test"):
        write_amat(tmp_path / "binarized_mnist" / static_mnist.amat_name(split),
                   static.split(split).astype(np.uint8))
    from_amat = datasets.load_dataset("static_mnist", str(tmp_path))  # verifies the canonical sha256s
    for split in ("train", "validation", "test"):
        np.testing.assert_array_equal(from_amat.split(split), static.split(split))


def test_dynamic_mnist_real_splits_and_binarisation(dynamic):
    assert split_sizes(dynamic) == (50000, 10000, 10000)
    assert dynamic.likelihood == "bernoulli" and dynamic.dynamic_binarization
    assert dynamic.pseudo_inputs_init == (0.05, 0.01)
    assert 0 < np.mean((dynamic.train > 0) & (dynamic.train < 1))  # probabilities, pixels / 255
    assert dynamic.train.min() == 0 and dynamic.train.max() == 1
    assert is_binary(dynamic.validation) and is_binary(dynamic.test)
    # Validation is the last 10,000 of the training file: pixels at 0 or 255 there are kept.
    raw = readers.idx_images(readers.read_bytes(shared("mnist", "train-images.idx3-ubyte")), "train")[-10000:]
    np.testing.assert_array_equal(dynamic.validation[..., 0][raw == 0], 0)
    np.testing.assert_array_equal(dynamic.validation[..., 0][raw == 255], 1)
    # The training pipeline re-binarises every epoch.
    epochs = [first_batch(dynamic, "train") for _ in range(2)]
    assert all(is_binary(epoch) for epoch in epochs) and not np.array_equal(*epochs)
    assert abs(epochs[0].mean() - dynamic.train[:500].mean()) < 0.01
    np.testing.assert_array_equal(first_batch(dynamic, "test"), first_batch(dynamic, "test"))


def test_dynamic_mnist_gzipped_canonical_names_load_the_same(dynamic, tmp_path):
    (tmp_path / "mnist").mkdir()
    for stem, shipped in (("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
                          ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte")):
        with open(shared("mnist", shipped), "rb") as source, \
                gzip.open(tmp_path / "mnist" / f"{stem}.gz", "wb", compresslevel=1) as target:
            shutil.copyfileobj(source, target)
    again = datasets.load_dataset("dynamic_mnist", str(tmp_path))  # checks the decompressed sha256
    np.testing.assert_array_equal(again.train, dynamic.train)
    np.testing.assert_array_equal(again.validation, dynamic.validation)  # fixed across loads
    np.testing.assert_array_equal(again.test, dynamic.test)


# ---------------------------------------------------------------- small format-faithful files


def idx_bytes(images):
    return b"\x00\x00\x08\x03" + np.array(images.shape, ">i4").tobytes() + images.tobytes()


@pytest.mark.parametrize("name", ["t10k-images-idx3-ubyte.gz", "t10k-images.idx3-ubyte",
                                  "t10k-images.idx3-ubyte.gz"])
def test_idx_reader_gzipped_or_not_both_spellings(tmp_path, name):
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    data = idx_bytes(images)
    (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    assert name in dynamic_mnist.file_names("t10k-images-idx3-ubyte")
    path = download.find(str(tmp_path), "mnist", dynamic_mnist.file_names("t10k-images-idx3-ubyte"))
    np.testing.assert_array_equal(readers.idx_images(readers.read_bytes(path), path), images)


def test_amat_reader_small_file(tmp_path):
    images = np.random.default_rng(1).integers(0, 2, (5, 784), dtype=np.uint8)
    write_amat(tmp_path / "x.amat", images)
    np.testing.assert_array_equal(readers.amat_images((tmp_path / "x.amat").read_bytes(), "x"), images)


def chardata_columns(images):
    """OMNIGLOT's layout: one image per column, each stored column-major."""
    return np.stack([image.flatten(order="F") for image in images], axis=1).astype(np.float64)


def make_small_omniglot(tmp_path, monkeypatch):
    """A chardata.mat of 40 + 12 images: binary, unique and asymmetric, last row grey (0.5)."""
    monkeypatch.setattr(omniglot, "SIZES", {"data": 40, "testdata": 12})
    monkeypatch.setattr(omniglot, "NUM_VALIDATION", 5)
    images = np.random.default_rng(2).integers(0, 2, (52, 28, 28)).astype(np.float64)
    images[:, -1, :] = 0.5
    path = tmp_path / "local" / "omniglot" / "chardata.mat"
    path.parent.mkdir(parents=True)
    scipy.io.savemat(path, {"data": chardata_columns(images[:40]), "testdata": chardata_columns(images[40:]),
                            "target": np.zeros((50, 40)), "testtarget": np.zeros((50, 12))})
    return path, images


@pytest.fixture
def small_omniglot(tmp_path, monkeypatch):
    return make_small_omniglot(tmp_path, monkeypatch)


def test_omniglot_small_chardata_layout_split_and_binarisation(small_omniglot):
    path, images = small_omniglot
    data = datasets.load_dataset("omniglot", str(path.parent.parent))
    assert split_sizes(data) == (35, 5, 12) and data.input_shape == (28, 28, 1)
    assert data.dynamic_binarization and data.likelihood == "bernoulli" and data.pseudo_inputs_init == (0.05, 0.01)
    # Images come out upright (Fortran order per column) and train/validation partition the file's images.
    originals = {image[:-1].tobytes(): image for image in images[:40].astype(np.float32)}
    held_out = [image[:-1, :, 0].tobytes() for image in np.concatenate([data.train, data.validation])]
    assert sorted(held_out) == sorted(originals)
    for image in data.train:
        np.testing.assert_array_equal(image[..., 0], originals[image[:-1, :, 0].tobytes()])
    np.testing.assert_array_equal(data.test[:, :-1, :, 0], images[40:, :-1])
    assert is_binary(data.validation) and is_binary(data.test)
    again = datasets.load_dataset("omniglot", str(path.parent.parent))
    np.testing.assert_array_equal(again.validation, data.validation)
    np.testing.assert_array_equal(again.test, data.test)
    epochs = [first_batch(data, "train", 35) for _ in range(2)]
    assert all(is_binary(epoch) for epoch in epochs) and not np.array_equal(*epochs)


def make_small_histopathology(monkeypatch):
    """The contents of a histopathology pickle of 6 + 3 + 2 patches."""
    monkeypatch.setattr(histopathology, "SIZES", {"training": 6, "validation": 3, "test": 2})
    rng = np.random.default_rng(3)
    contents = {key: rng.uniform(size=(n, 784)).astype(np.float32) for key, n in histopathology.SIZES.items()}
    contents["training"][0, :2] = [0.0, 1.0]
    return contents


@pytest.fixture
def small_histopathology(monkeypatch):
    return make_small_histopathology(monkeypatch)


def write_histopathology(directory, contents, archive):
    directory.mkdir(parents=True, exist_ok=True)
    data = pickle.dumps(contents, protocol=2)
    if not archive:
        (directory / histopathology.PICKLE).write_bytes(data)
        return
    with tarfile.open(directory / histopathology.ARCHIVE, "w:gz") as tar:
        member = tarfile.TarInfo(histopathology.PICKLE)
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))


@pytest.mark.parametrize("archive", [True, False])
def test_histopathology_small_pickle_or_tar_gz(tmp_path, small_histopathology, archive):
    write_histopathology(tmp_path / "histopathology", small_histopathology, archive)
    data = datasets.load_dataset("histopathology", str(tmp_path))
    assert split_sizes(data) == (6, 3, 2) and data.input_shape == (28, 28, 1)
    assert data.likelihood == "discretized_logistic" and data.pseudo_inputs_init == (0.4, 0.05)
    assert data.train[0, 0, :2, 0].tolist() == [np.float32(1 / 512), np.float32(1 - 1 / 512)]
    np.testing.assert_array_equal(data.test.reshape(2, 784),  # row-major
                                  np.clip(small_histopathology["test"], *histopathology.CLIP))


# ---------------------------------------------------------------- local directory, cache, download


def test_histopathology_archive_downloads_into_cache(tmp_path, monkeypatch, small_histopathology):
    write_histopathology(tmp_path / "server", small_histopathology, archive=True)
    monkeypatch.setattr(histopathology, "URL", (tmp_path / "server" / histopathology.ARCHIVE).as_uri())
    data = datasets.load_dataset("histopathology")
    assert split_sizes(data) == (6, 3, 2)
    assert os.listdir(tmp_path / "cache" / "histopathology") == [histopathology.ARCHIVE]


def test_data_dir_argument_beats_env_var_which_beats_cache(tmp_path, monkeypatch, small_histopathology):
    first, second = dict(small_histopathology), dict(small_histopathology)
    second["test"] = second["test"] * 0.5
    write_histopathology(tmp_path / "a" / "histopathology", first, archive=False)
    write_histopathology(tmp_path / "b", second, archive=False)  # the file at the top is accepted too
    monkeypatch.setenv(download.DATA_DIR_ENV, str(tmp_path / "b"))
    from_env = datasets.load_dataset("histopathology")
    from_argument = datasets.load_dataset("histopathology", str(tmp_path / "a"))
    assert not np.array_equal(from_env.test, from_argument.test)
    np.testing.assert_array_equal(from_argument.test.reshape(2, 784), np.clip(first["test"], *histopathology.CLIP))


def test_cache_dir_defaults_to_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.delenv(download.CACHE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert download.cache_dir() == os.path.join(str(tmp_path), "tfvamp")


def make_source(tmp_path, data=b"some dataset bytes" * 100):
    source = tmp_path / "server" / "file.bin"
    source.parent.mkdir()
    source.write_bytes(data)
    return source.as_uri(), data


def test_download_from_file_url_checks_and_places_file(tmp_path):
    url, data = make_source(tmp_path)
    remote = download.Remote((url,), hashlib.sha256(data).hexdigest(), len(data))
    target = tmp_path / "cache" / "x" / "file.bin"
    assert download.download(remote, str(target)) == str(target)
    assert target.read_bytes() == data and os.listdir(target.parent) == ["file.bin"]


@pytest.mark.parametrize("sha256, size", [("0" * 64, None), (None, 5)])
def test_download_with_wrong_checksum_or_size_leaves_nothing(tmp_path, sha256, size):
    url, _ = make_source(tmp_path)
    target = tmp_path / "cache" / "file.bin"
    with pytest.raises(DatasetError, match="checksum mismatch" if sha256 else "expected 5"):
        download.download(download.Remote((url,), sha256, size), str(target))
    assert os.listdir(target.parent) == []


def test_interrupted_download_leaves_nothing_and_next_mirror_is_tried(tmp_path, monkeypatch):
    url, data = make_source(tmp_path)
    real_fetch = download.fetch

    def flaky_fetch(source_url, file):
        if "broken" in source_url:
            file.write(data[:10])
            raise ConnectionResetError("connection reset")
        real_fetch(source_url, file)

    monkeypatch.setattr(download, "fetch", flaky_fetch)
    target = tmp_path / "cache" / "file.bin"
    with pytest.raises(DatasetError, match="connection reset") as error:
        download.download(download.Remote(("http://broken/a",)), str(target))
    assert "http://broken/a" in str(error.value) and os.listdir(target.parent) == []
    download.download(download.Remote(("http://broken/a", url), hashlib.sha256(data).hexdigest()), str(target))
    assert target.read_bytes() == data and os.listdir(target.parent) == ["file.bin"]

    def interrupted_fetch(source_url, file):
        file.write(data[:10])
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "fetch", interrupted_fetch)
    with pytest.raises(KeyboardInterrupt):
        download.download(download.Remote((url,)), str(tmp_path / "cache" / "other.bin"))
    assert os.listdir(target.parent) == ["file.bin"]


def test_omniglot_downloads_into_cache_once_and_rejects_a_bad_download(tmp_path, monkeypatch, small_omniglot):
    path, _ = small_omniglot
    junk = tmp_path / "junk.mat"
    junk.write_bytes(b"<html>Not Found</html>")
    monkeypatch.setattr(omniglot, "URL", junk.as_uri())
    with pytest.raises(DatasetError, match="not a readable MATLAB file"):
        datasets.load_dataset("omniglot")
    cached = tmp_path / "cache" / "omniglot"
    assert os.listdir(cached) == []
    monkeypatch.setattr(omniglot, "URL", path.as_uri())
    downloaded = datasets.load_dataset("omniglot")
    assert os.listdir(cached) == ["chardata.mat"] and split_sizes(downloaded) == (35, 5, 12)
    monkeypatch.setattr(download, "fetch", lambda url, file: pytest.fail("downloaded twice"))
    np.testing.assert_array_equal(datasets.load_dataset("omniglot").test, downloaded.test)


def test_freyfaces_real_download_into_cache_is_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(freyfaces, "URL", "file://" + shared("freyfaces", freyfaces.FILENAME))
    data = datasets.load_dataset("freyfaces")
    assert split_sizes(data) == (1565, 200, 200)
    assert os.listdir(tmp_path / "cache" / "freyfaces") == [freyfaces.FILENAME]


# ---------------------------------------------------------------- error paths


@pytest.mark.parametrize("name, filename, url_part", [
    ("caltech", caltech.FILENAME, "marlin"),
    ("freyfaces", freyfaces.FILENAME, "vae_vampprior"),
    ("static_mnist", "binarized_mnist_train.amat", "larocheh"),
    ("dynamic_mnist", "train-images-idx3-ubyte.gz", "cvdf-datasets"),
    ("omniglot", "chardata.mat", "yburda/iwae"),
    ("histopathology", histopathology.ARCHIVE, "vae_householder_flow"),
])
def test_missing_file_names_file_places_and_url(tmp_path, name, filename, url_part):
    with pytest.raises(DatasetError) as error:
        datasets.load_dataset(name, str(tmp_path))
    message = str(error.value)
    assert filename in message and os.path.join(str(tmp_path), filename) in message and url_part in message


def test_failed_download_names_url_and_how_to_get_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(omniglot, "URL", (tmp_path / "nowhere.mat").as_uri())
    with pytest.raises(DatasetError, match="Could not download chardata.mat.*nowhere.mat.*--data_dir"):
        datasets.load_dataset("omniglot")


@pytest.mark.parametrize("relative, content, match", [
    ("freyfaces/freyfaces.pkl", b"not the faces", "Checksum mismatch for .*freyfaces.pkl"),
    ("mnist/train-images-idx3-ubyte.gz", gzip.compress(idx_bytes(np.zeros((2, 28, 28), np.uint8))),
     "Checksum mismatch for the decompressed content of .*train-images-idx3-ubyte.gz"),
    ("binarized_mnist/binarized_mnist_uint8.npz", b"PK junk", "Checksum mismatch"),
    ("caltech101_silhouettes/" + caltech.FILENAME, b"junk", "Checksum mismatch"),
])
def test_wrong_checksum_is_an_error(tmp_path, relative, content, match):
    (tmp_path / relative).parent.mkdir(parents=True)
    (tmp_path / relative).write_bytes(content)
    name = {"freyfaces": "freyfaces", "mnist": "dynamic_mnist", "binarized_mnist": "static_mnist",
            "caltech101_silhouettes": "caltech"}[relative.split("/")[0]]
    with pytest.raises(DatasetError, match=match):
        datasets.load_dataset(name, str(tmp_path))


def test_truncated_or_corrupt_files_are_clear_errors(tmp_path):
    images = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(DatasetError, match="truncated or corrupt.*promises 3 images"):
        readers.idx_images(images[:-5], "short.idx")
    with pytest.raises(DatasetError, match="not an IDX3"):
        readers.idx_images(b"\x00" * 20, "zeros.idx")
    (tmp_path / "short.gz").write_bytes(gzip.compress(images)[:-10])
    with pytest.raises(DatasetError, match="not a complete gzip file"):
        readers.read_bytes(str(tmp_path / "short.gz"))
    line = b" ".join([b"0"] * 784) + b"\n"
    with pytest.raises(DatasetError, match="truncated"):
        readers.amat_images(line * 2 + line[:100], "short.amat")
    with pytest.raises(DatasetError, match="784 space-separated 0/1"):
        readers.amat_images(line.replace(b"0", b"2", 1), "bad.amat")
    np.savez_compressed(tmp_path / "x.npz", train=np.zeros(10))
    (tmp_path / "short.npz").write_bytes((tmp_path / "x.npz").read_bytes()[:40])
    with pytest.raises(DatasetError, match="not a readable .npz"):
        readers.npz_arrays(str(tmp_path / "short.npz"), ["train"])
    with pytest.raises(DatasetError, match="lacks the arrays"):
        readers.npz_arrays(str(tmp_path / "x.npz"), ["valid"])
    with pytest.raises(DatasetError, match="not a readable pickle"):
        readers.restricted_pickle_load(pickle.dumps({"a": np.zeros(100)}, protocol=2)[:50], "short.pkl")
    (tmp_path / "short.tar.gz").write_bytes(b"\x1f\x8b\x08 broken")
    with pytest.raises(DatasetError, match="not a readable tar archive"):
        readers.tar_member(str(tmp_path / "short.tar.gz"), "histopathology.pkl")


def test_truncated_or_malformed_omniglot_mat_is_an_error(small_omniglot):
    path, images = small_omniglot
    root = str(path.parent.parent)
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(DatasetError, match="chardata.mat is not a readable MATLAB file"):
        datasets.load_dataset("omniglot", root)
    scipy.io.savemat(path, {"data": chardata_columns(images[:40])})
    with pytest.raises(DatasetError, match="no variable 'testdata'"):
        datasets.load_dataset("omniglot", root)
    scipy.io.savemat(path, {"data": chardata_columns(images[:40]).T, "testdata": chardata_columns(images[40:])})
    with pytest.raises(DatasetError, match=r"must be 784 x 40 .*got \(40, 784\)"):
        datasets.load_dataset("omniglot", root)


def test_malformed_histopathology_pickle_is_an_error(tmp_path, small_histopathology):
    directory = tmp_path / "histopathology"
    write_histopathology(directory, {"training": small_histopathology["training"]}, archive=False)
    with pytest.raises(DatasetError, match="keys"):
        datasets.load_dataset("histopathology", str(tmp_path))
    write_histopathology(directory, dict(small_histopathology, test=small_histopathology["test"] * 3), archive=False)
    with pytest.raises(DatasetError, match=r"values must lie in \[0.0, 1.0\]"):
        datasets.load_dataset("histopathology", str(tmp_path))
    (directory / histopathology.PICKLE).write_bytes(pickle.dumps(small_histopathology, protocol=2)[:-30])
    with pytest.raises(DatasetError, match="not a readable pickle"):
        datasets.load_dataset("histopathology", str(tmp_path))


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("archive", [True, False])
def test_pickle_calling_anything_but_numpy_is_refused(tmp_path, small_histopathology, archive):
    marker = tmp_path / "pwned"
    write_histopathology(tmp_path / "histopathology", dict(small_histopathology, test=_Exploit(marker)), archive)
    with pytest.raises(DatasetError, match="Refusing to unpickle (posix|nt).system"):
        datasets.load_dataset("histopathology", str(tmp_path))
    assert not marker.exists()
    evil = pickle.dumps([np.zeros(2), eval], protocol=2)  # a non-NumPy global
    with pytest.raises(DatasetError, match="Refusing to unpickle (builtins|__builtin__).eval"):
        readers.restricted_pickle_load(evil)


# ---------------------------------------------------------------- the trainer, end to end


def run_trainer(dataset, output_dir):
    result = subprocess.run(
        [sys.executable, "-m", "trainers.train", f"--dataset={dataset}", "--epochs=1", "--eval_samples=50",
         f"--data_dir={SHARED_DATA}", f"--output_dir={output_dir}", "--verbose=0"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((output_dir / "results.json").read_text())
    assert np.isfinite(results["test_log_likelihood"]) and results["flags"]["dataset"] == dataset
    return results


@pytest.mark.slow
@pytest.mark.parametrize("dataset, folder", [("freyfaces", "freyfaces"), ("static_mnist", "binarized_mnist"),
                                             ("dynamic_mnist", "mnist")])
def test_train_cli_on_real_dataset(tmp_path, dataset, folder):
    shared(folder)
    run_trainer(dataset, tmp_path)


def test_train_cli_rejects_missing_data_with_a_clear_message(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "trainers.train", "--dataset=omniglot", f"--data_dir={tmp_path}",
         f"--output_dir={tmp_path / 'out'}"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "chardata.mat not found" in result.stderr
    assert not (tmp_path / "out").exists()


def test_every_epoch_of_a_pipeline_is_binarised_afresh_also_under_a_global_seed():
    """keras.utils.set_random_seed, as users call it, must not freeze dynamic binarisation:
    each iteration (a fit epoch) draws anew, and the same seed repeats the sequence."""
    data = datasets.core.ImageDataset(
        "tiny", np.full((40, 2, 2, 1), 0.5, np.float32), None, None, "bernoulli", (0.0, 1.0))
    data.dynamic_binarization = True

    def two_epochs(**seed):
        dataset = data.pipeline("train", 8, **seed)
        return [np.concatenate(list(dataset.as_numpy_iterator())) for _ in range(2)]

    for seed in ({}, {"seed": 7}):
        keras.utils.set_random_seed(0)
        first, second = two_epochs(**seed)
        assert is_binary(first) and not np.array_equal(first, second)
        keras.utils.set_random_seed(0)
        again = two_epochs(**seed)
        np.testing.assert_array_equal(again[0], first)
        np.testing.assert_array_equal(again[1], second)


def test_training_epochs_depend_on_the_seed_and_the_epoch_alone():
    """A run resumed after epoch 1 trains on the batches of an uninterrupted run's epochs 2-3."""
    data = datasets.core.ImageDataset(
        "tiny", np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1) / 10, None, None, "bernoulli",
        (0.0, 1.0))
    for dynamic in (False, True):
        data.dynamic_binarization = dynamic
        whole = [b.numpy() for b in data.training_epochs(4, seed=3, first_epoch=0, epochs=3)]
        resumed = [b.numpy() for b in data.training_epochs(4, seed=3, first_epoch=1, epochs=3)]
        assert len(whole) == 3 * data.steps_per_epoch(4) == 9
        assert all(np.array_equal(a, b) for a, b in zip(whole[3:], resumed, strict=True))
        other_seed = [b.numpy() for b in data.training_epochs(4, seed=4, first_epoch=0, epochs=1)]
        assert not all(np.array_equal(a, b) for a, b in zip(whole[:3], other_seed))
        if not dynamic:  # every epoch is a permutation of the training set, each another
            epochs = [np.concatenate(whole[i:i + 3]).ravel() for i in (0, 3, 6)]
            for epoch in epochs:
                np.testing.assert_array_equal(np.sort(epoch), data.train.ravel())
            assert not np.array_equal(epochs[0], epochs[1])
        else:
            assert set(np.unique(np.concatenate(whole))) <= {0.0, 1.0}
