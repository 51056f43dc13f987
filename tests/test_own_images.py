"""A user's own images (tfvamp.datasets.load_images): array files, folders of image files and
TFDS datasets, with what the paper's loaders decide per dataset decided from the data."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tfvamp.datasets import DatasetError, ImageDataset, load_images


def grey_images(count, height=20, width=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(count, height, width), dtype=np.uint8)


def write_png(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(path, tf.io.encode_png(image if image.ndim == 3 else image[..., None]))


def test_an_npz_with_its_own_splits_keeps_them_scales_grey_values_and_starts_pseudo_inputs_from_the_data(tmp_path):
    train, valid, test = grey_images(50), grey_images(10, seed=1), grey_images(12, seed=2)
    path = tmp_path / "faces.npz"
    np.savez(path, train=train, valid=valid, test=test)
    data = load_images(str(path))
    assert isinstance(data, ImageDataset) and data.name == "faces"
    assert data.input_shape == (20, 16, 1)
    assert [len(data.train), len(data.validation), len(data.test)] == [50, 10, 12]
    np.testing.assert_allclose(data.test[..., 0], test / 255.0, rtol=1e-6)
    assert data.likelihood == "discretized_logistic" and not data.dynamic_binarization
    np.testing.assert_allclose(data.pseudo_inputs_init, (np.mean(train / 255.0), np.std(train / 255.0)),
                               rtol=1e-5)
    assert "the data's own train / validation / test" in " ".join(data.notes)


def test_data_without_validation_and_test_is_split_by_a_seeded_permutation(tmp_path):
    images = (np.random.default_rng(0).uniform(size=(100, 8, 8)) < 0.3).astype(np.float32)
    path = tmp_path / "binary.npy"
    np.save(path, images)
    data = load_images(str(path), split_seed=5)
    assert data.likelihood == "bernoulli"
    assert [len(data.train), len(data.validation), len(data.test)] == [80, 10, 10]
    again, other = load_images(str(path), split_seed=5), load_images(str(path), split_seed=6)
    np.testing.assert_array_equal(again.validation, data.validation)
    assert not np.array_equal(other.validation, data.validation)
    # The three splits are a partition of the file's images.
    every = np.concatenate([data.train, data.validation, data.test]).reshape(100, -1)
    assert sorted(map(bytes, every.astype(np.uint8))) == sorted(map(bytes, images.reshape(100, -1).astype(np.uint8)))
    assert "seed 5" in data.notes[1]


def test_grey_data_binarised_statically_or_afresh_every_epoch(tmp_path):
    path = tmp_path / "digits.npz"
    np.savez(path, x=grey_images(60, 6, 6))
    static = load_images(str(path), binarize="static")
    assert static.likelihood == "bernoulli" and not static.dynamic_binarization
    assert set(np.unique(static.train)) <= {0.0, 1.0}
    dynamic = load_images(str(path), binarize="dynamic")
    assert dynamic.dynamic_binarization and len(np.unique(dynamic.train)) > 2
    assert set(np.unique(dynamic.test)) <= {0.0, 1.0}
    assert load_images(str(path), likelihood="gaussian").likelihood == "gaussian"


def test_a_folder_of_pngs_in_split_subfolders_of_another_size(tmp_path):
    images = grey_images(30, 20, 16)
    for i, image in enumerate(images):
        split = "test" if i < 5 else "train"
        write_png(str(tmp_path / "pngs" / split / f"class{i % 2}" / f"{i:03d}.png"), image)
    data = load_images(str(tmp_path / "pngs"))
    assert data.input_shape == (20, 16, 1)
    assert [len(data.train), len(data.validation), len(data.test)] == [23, 2, 5]
    np.testing.assert_allclose(np.sort(data.test.reshape(5, -1), axis=0),
                               np.sort(images[:5].reshape(5, -1) / 255.0, axis=0), rtol=1e-6)


@pytest.mark.parametrize("case, message", [
    ("mixed_sizes", "different sizes"),
    ("empty", "holds no image files"),
    ("not_an_image", "is not a readable image"),
    ("colour_for_grey", "colour images where grey ones were asked"),
    ("too_few", "too few to hold out"),
    ("floats_out_of_range", "divide 0-255 images by 255"),
    ("npz_without_train", "expected 'train'"),
    ("missing", "does not exist"),
])
def test_bad_data_is_one_clear_line(tmp_path, case, message):
    folder = tmp_path / "images"
    folder.mkdir()
    source, kwargs = str(folder), {}
    if case == "mixed_sizes":
        write_png(str(folder / "a.png"), grey_images(1, 20, 16)[0])
        write_png(str(folder / "b.png"), grey_images(1, 28, 28)[0])
    elif case == "not_an_image":
        (folder / "a.png").write_bytes(b"not a png")
    elif case == "colour_for_grey":
        colour = np.random.default_rng(0).integers(0, 256, size=(20, 8, 8, 3), dtype=np.uint8)
        np.save(tmp_path / "colour.npy", colour)
        source, kwargs = str(tmp_path / "colour.npy"), {"channels": 1}
    elif case == "too_few":
        np.save(tmp_path / "few.npy", grey_images(3, 4, 4))
        source = str(tmp_path / "few.npy")
    elif case == "floats_out_of_range":
        np.save(tmp_path / "floats.npy", grey_images(20, 4, 4).astype(np.float32))
        source = str(tmp_path / "floats.npy")
    elif case == "npz_without_train":
        np.savez(tmp_path / "odd.npz", pictures=grey_images(20, 4, 4), test=grey_images(5, 4, 4))
        source = str(tmp_path / "odd.npz")
    elif case == "missing":
        source = str(tmp_path / "nowhere.npz")
    with pytest.raises(DatasetError, match=message) as error:
        load_images(source, **kwargs)
    assert "\n" not in str(error.value)


def test_colour_images_with_equal_channels_are_grey_when_grey_is_asked(tmp_path):
    grey = grey_images(20, 6, 6)
    np.save(tmp_path / "rgb.npy", np.repeat(grey[..., None], 3, axis=-1))
    data = load_images(str(tmp_path / "rgb.npy"), channels=1)
    assert data.input_shape == (6, 6, 1)


def test_a_tfds_dataset_by_name_with_tfds_own_mock_data():
    with tfds.testing.mock_data(num_examples=40):
        data = load_images("tfds:fashion_mnist:train")
        named = load_images("tfds:mnist:train[:30]:train[30:]:test")
    assert data.input_shape == (28, 28, 1) and data.name == "tfds:fashion_mnist:train"
    assert [len(data.train), len(data.validation), len(data.test)] == [32, 4, 4]
    assert "the data's own" in named.notes[1]
    with pytest.raises(DatasetError, match="not tfds:NAME"):
        load_images("tfds:mnist::test")


def trainer_config(dataset, output_dir, **overrides):
    from trainers import train
    from trainers.run_config import RunConfig

    return RunConfig.from_flags({**train.flag_values(), "dataset": dataset, "prior": "vamp",
                                 "num_components": 5, "hidden_units": 16, "latent_dim": 4, "epochs": 2,
                                 "warmup_epochs": 2, "eval_samples": 5, "batch_size": 20, "verbose": "0",
                                 "strategy": "default", "sample_every": 0, "output_dir": str(output_dir),
                                 **overrides})


def test_the_trainer_on_a_folder_of_pngs_of_its_own_size_writes_results_figures_and_export(tmp_path):
    from tfvamp import export
    from trainers import train
    from trainers.run_config import RunConfig

    for i, image in enumerate(grey_images(120, 20, 16)):
        write_png(str(tmp_path / "pngs" / ("test" if i < 20 else "train") / f"{i:03d}.png"), image)
    config = trainer_config(str(tmp_path / "pngs"), tmp_path / "run", binarize="static", split_seed=3)
    results = train.train_and_evaluate(config)
    assert np.isfinite(results["test_log_likelihood"])
    assert RunConfig.read(str(tmp_path / "run")) == config  # a resume and trainers.evaluate read the same split
    model = export.load_model(results["export"])
    assert model.image_shape == (20, 16, 1) and model.likelihood.name.startswith("bernoulli")
    assert set(os.listdir(tmp_path / "run" / "figures")) >= {"samples.png", "pseudo_inputs.png"}


def test_the_trainer_refuses_fewer_training_images_than_a_batch(tmp_path):
    from trainers import train
    from trainers.errors import FlagError

    np.savez(tmp_path / "few.npz", train=grey_images(30, 6, 6), test=grey_images(5, 6, 6))
    with pytest.raises(FlagError, match="fewer than a batch"):
        train.train_and_evaluate(trainer_config(str(tmp_path / "few.npz"), tmp_path / "run", batch_size=100))
    assert not (tmp_path / "run").exists()


def test_the_trainer_on_a_tfds_dataset_by_name(tmp_path):
    from trainers import train

    with tfds.testing.mock_data(num_examples=60):
        results = train.train_and_evaluate(trainer_config("tfds:mnist:train", tmp_path / "run"))
    assert np.isfinite(results["test_log_likelihood"]) and results["flags"]["dataset"] == "tfds:mnist:train"
