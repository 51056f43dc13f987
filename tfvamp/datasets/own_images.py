"""A user's own images as an ``ImageDataset``: an array file, a folder of image files, or
any TensorFlow Datasets image dataset.

    load_images("digits.npz")              # arrays train [, validation | valid] [, test], or x | images
    load_images("faces.npy")               # one array [N, H, W] or [N, H, W, C]
    load_images("photos/")                 # PNG/JPEG/BMP/GIF files, optionally in train/, validation/, test/
    load_images("tfds:fashion_mnist")      # tfds:NAME[/CONFIG][:TRAIN_SPLIT[:VALIDATION_SPLIT[:TEST_SPLIT]]]

What the paper's loaders decide per dataset is decided here from the data, and each decision is
a line of the dataset's ``notes``:

- the shape ``[H, W, C]``, the same for every image (one ``DatasetError`` naming two images of
  different sizes otherwise);
- the values: unsigned integers of 0-255, or floats in [0, 1], scaled once to [0, 1] float32;
- the likelihood: images whose values are all 0 and 1 are binary (Bernoulli), others are grey
  (the discretised logistic over 256 values); ``binarize="static"`` binarises grey images once,
  ``binarize="dynamic"`` the training images afresh every epoch and the others once, as the paper
  does for MNIST (both then Bernoulli); ``likelihood=`` overrides the choice;
- the split: the data's own train/validation/test where it has them; otherwise a seeded
  permutation of the training images gives ``validation_fraction`` of them to validation (and,
  where the data has no test split either, ``test_fraction`` to test);
- the VampPrior's pseudo-inputs start N(mean, std) of the training pixels (the paper's per-dataset
  choice, Sec. 4).
"""
import os
import re

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfvamp.datasets.core import SPLITS, DatasetError, ImageDataset, binarize_once
from tfvamp.names import TFDS_PREFIX

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
SPLIT_NAMES = {"train": ("train",), "validation": ("validation", "valid", "val"), "test": ("test",)}
ARRAY_KEYS = ("x", "images")  # an .npz without split names holds one array under one of these
BINARIZE = (None, "static", "dynamic")
# Fixed seeds of the one binarisation of the validation and test images (binarize="static" also
# binarises the training images once, with the third).
BINARIZE_SEEDS = {"validation": 1, "test": 2, "train": 3}


def load_images(source, binarize=None, likelihood=None, channels=None, split_seed=0,
                validation_fraction=0.1, test_fraction=0.1, data_dir=None, download=True):
    """The images of ``source`` as an ``ImageDataset`` (see the module's docstring).

    ``channels``: ``None`` keeps the data's channels; ``1`` asks for grey images (colour
    images whose three channels are equal are taken as grey; others are refused), ``3`` for
    colour (grey images are refused). ``split_seed`` seeds the split of data without
    validation or test images. ``data_dir`` and ``download`` are TFDS's, for ``tfds:`` sources.
    Every malformed input is one ``DatasetError`` naming it.
    """
    if binarize not in BINARIZE:
        raise ValueError(f"binarize={binarize!r}; valid: {list(BINARIZE)}")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels={channels!r}; valid: None (as the data), 1 (grey), 3 (colour)")
    source = str(source)
    if source.startswith(TFDS_PREFIX):
        splits, name = _read_tfds(source[len(TFDS_PREFIX):], data_dir, download), source
    elif os.path.isdir(source):
        splits, name = _read_folder(source), os.path.basename(os.path.normpath(source))
    elif os.path.isfile(source) and source.endswith((".npz", ".npy")):
        splits, name = _read_array_file(source), os.path.splitext(os.path.basename(source))[0]
    elif os.path.exists(source):
        raise DatasetError(f"{source} is neither a folder of images, an .npz or .npy file, nor tfds:NAME")
    else:
        raise DatasetError(f"{source} does not exist (a folder of images, an .npz or .npy file, or tfds:NAME)")
    splits = {split: _as_images(images, f"{source} ({split})", channels) for split, images in splits.items()}
    _check_same_shape(splits, source)
    notes = [f"{source}: images of {'x'.join(map(str, splits['train'].shape[1:]))} (H x W x C)"]
    splits, split_note = _split(splits, split_seed, validation_fraction, test_fraction, source)
    notes.append(split_note)
    binary = all(np.all((images == 0) | (images == 1)) for images in splits.values())
    return _image_dataset(name, splits, binary, binarize, likelihood, notes)


def _image_dataset(name, splits, binary, binarize, likelihood, notes):
    dynamic = False
    if binary:
        chosen, reason = "bernoulli", "binary values (0 and 1 only)"
    elif binarize is None:
        chosen, reason = "discretized_logistic", "grey values (256 levels)"
    else:
        dynamic = binarize == "dynamic"
        for split in SPLITS:
            if split != "train" or not dynamic:
                splits[split] = binarize_once(splits[split], BINARIZE_SEEDS[split])
        chosen = "bernoulli"
        reason = ("grey values binarised afresh every epoch (validation and test once)" if dynamic
                  else "grey values binarised once")
    if likelihood is not None:
        reason, chosen = f"{reason}; likelihood {likelihood!r} as asked", likelihood
    train = splits["train"]
    init = (float(train.mean()), float(train.std()))
    notes.append(f"{chosen} likelihood: {reason}")
    notes.append(f"pseudo-inputs start N({init[0]:.3f}, {init[1]:.3f}): the training pixels' mean and std")
    return ImageDataset(name=name, likelihood=chosen, pseudo_inputs_init=init,
                        dynamic_binarization=dynamic, notes=tuple(notes),
                        **{split: splits[split] for split in SPLITS})


def _split(splits, seed, validation_fraction, test_fraction, source):
    """The three splits: the data's own, else held out of the training images by a seeded
    permutation; and a line saying which."""
    missing = [split for split in ("validation", "test") if split not in splits]
    if not missing:
        return splits, "splits: the data's own train / validation / test"
    train = splits["train"]
    fractions = {"validation": validation_fraction, "test": test_fraction}
    counts = {split: int(round(fractions[split] * len(train))) for split in missing}
    if any(count < 1 for count in counts.values()) or sum(counts.values()) >= len(train):
        raise DatasetError(f"{source} has {len(train)} training images: too few to hold out "
                           f"{' and '.join(missing)} images from them ({counts})")
    order = np.random.default_rng(seed).permutation(len(train))
    start, held = 0, []
    for split in missing:
        splits[split] = train[order[start:start + counts[split]]]
        held.append(f"{counts[split]} {split}")
        start += counts[split]
    splits["train"] = train[np.sort(order[start:])]
    return splits, (f"splits: {', '.join(held)} images held out of the training images "
                    f"(seeded permutation, seed {seed}); {len(splits['train'])} train")


def _as_images(array, what, channels):
    """An array of images -> float32 ``[N, H, W, C]`` in [0, 1], checked."""
    array = np.asarray(array)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3, 4):
        raise DatasetError(f"{what}: shape {array.shape} is not images [N, H, W] or [N, H, W, C] "
                           "with C = 1, 3 or 4")
    if len(array) == 0:
        raise DatasetError(f"{what} holds no images")
    if array.shape[-1] == 4:  # RGBA: the alpha channel is not part of the image
        array = array[..., :3]
    if np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
        if array.min() < 0 or array.max() > 255:
            raise DatasetError(f"{what}: integer values from {array.min()} to {array.max()}; "
                               "expected 0-255")
        scale = 1.0 if array.dtype == bool or array.max() <= 1 else 255.0
        images = array.astype(np.float32) / scale
    elif np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise DatasetError(f"{what} holds NaN or infinite values")
        if array.min() < 0 or array.max() > 1:
            raise DatasetError(f"{what}: float values from {array.min():g} to {array.max():g}; "
                               "expected [0, 1] (divide 0-255 images by 255, or store them as uint8)")
        images = array.astype(np.float32)
    else:
        raise DatasetError(f"{what}: values of dtype {array.dtype} are not images")
    if channels == 1 and images.shape[-1] == 3:
        if not (np.array_equal(images[..., 0], images[..., 1])
                and np.array_equal(images[..., 0], images[..., 2])):
            raise DatasetError(f"{what} holds colour images where grey ones were asked (channels=1); "
                               "convert them to grey, or ask for channels=3")
        images = images[..., :1]
    if channels == 3 and images.shape[-1] == 1:
        raise DatasetError(f"{what} holds grey images where colour ones were asked (channels=3)")
    return images


def _check_same_shape(splits, source):
    shapes = {split: images.shape[1:] for split, images in splits.items()}
    if len(set(shapes.values())) > 1:
        raise DatasetError(f"{source}: the splits hold images of different shapes {shapes}")


def _read_array_file(path):
    """``{split: array}`` of an ``.npy`` (one array: the training images) or ``.npz`` file."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DatasetError(f"{path} is not a readable NumPy file ({error})") from error
    if isinstance(loaded, np.ndarray):
        return {"train": loaded}
    with loaded:
        keys = set(loaded.files)
        splits = {}
        for split, names in SPLIT_NAMES.items():
            found = [name for name in names if name in keys]
            if len(found) > 1:
                raise DatasetError(f"{path} has both {found[0]!r} and {found[1]!r}: one array per split")
            if found:
                splits[split] = loaded[found[0]]
        if "train" not in splits:
            found = [name for name in ARRAY_KEYS if name in keys]
            if splits or len(found) != 1:
                raise DatasetError(f"{path} holds arrays {sorted(keys)}; expected 'train' (and optionally "
                                   f"'validation' or 'valid', and 'test'), or one array named 'x' or 'images'")
            splits["train"] = loaded[found[0]]
        return splits


def _image_files(folder):
    files = []
    for root, _, names in os.walk(folder):
        files += [os.path.join(root, name) for name in names if name.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(files)


def _read_folder(folder):
    """``{split: uint8 [N, H, W, C]}`` of a folder of image files: its ``train/``,
    ``validation/`` (or ``valid/``, ``val/``) and ``test/`` subfolders where it has them (a
    split's images may lie in further subfolders, e.g. one per class), else every image file
    under it as training images."""
    subfolders = {split: os.path.join(folder, name) for split, names in SPLIT_NAMES.items()
                  for name in names if os.path.isdir(os.path.join(folder, name))}
    if subfolders and "train" not in subfolders:
        raise DatasetError(f"{folder} has {sorted(os.path.basename(p) for p in subfolders.values())} "
                           "subfolders but no train/")
    groups = {split: _image_files(path) for split, path in subfolders.items()} or {"train": _image_files(folder)}
    for split, files in groups.items():
        if not files:
            where = subfolders.get(split, folder)
            raise DatasetError(f"{where} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return {split: _decode_all(files, folder) for split, files in groups.items()}


def _decode_all(files, folder):
    images, first = [], None
    for path in files:
        try:
            image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False).numpy()
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as error:
            raise DatasetError(f"{path} is not a readable image ({error.message.splitlines()[0]})") from error
        if first is None:
            first = (path, image.shape)
        elif image.shape[:2] != first[1][:2]:
            raise DatasetError(
                f"{folder} holds images of different sizes: {path} is {image.shape[0]}x{image.shape[1]}, "
                f"{first[0]} is {first[1][0]}x{first[1][1]} (H x W); resize them to one size")
        elif image.shape[2] != first[1][2]:
            raise DatasetError(f"{folder} mixes grey and colour images: {path} has {image.shape[2]} "
                               f"channels, {first[0]} has {first[1][2]}")
        images.append(image)
    return np.stack(images)


def _read_tfds(spec, data_dir, download):
    """``{split: images}`` of the TFDS dataset ``NAME[/CONFIG][:TRAIN[:VALIDATION[:TEST]]]``
    (TFDS split names, slices allowed, e.g. ``train[:90%]``); without splits, the dataset's
    own ``train``, ``validation`` and ``test`` where it has them."""
    name, _, rest = spec.partition(":")
    asked = re.findall(r"(?:[^:\[]|\[[^\]]*\])+", rest)  # the colons outside TFDS slices part splits
    if not name or len(asked) > 3 or (rest and ":".join(asked) != rest):
        raise DatasetError(f"tfds:{spec} is not tfds:NAME[/CONFIG][:TRAIN[:VALIDATION[:TEST]]]")
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # TFDS raises DatasetNotFoundError, ValueError, ... for unknown names
        raise DatasetError(f"tfds:{name}: {str(error).splitlines()[0]}") from error
    image_keys = [key for key, feature in builder.info.features.items()
                  if isinstance(feature, tfds.features.Image)]
    if len(image_keys) != 1:
        raise DatasetError(f"tfds:{name} has image features {image_keys}; expected exactly one")
    if asked:
        wanted = dict(zip(("train", "validation", "test"), asked))
    else:
        if not builder.info.splits and download:  # split names are known once the data is prepared
            try:
                builder.download_and_prepare()
            except Exception as error:
                raise DatasetError(f"tfds:{name}: {str(error).splitlines()[0]}") from error
        available = set(builder.info.splits.keys())
        wanted = {split: found[0] for split, names in SPLIT_NAMES.items()
                  if (found := [n for n in names if n in available])}
        if "train" not in wanted:
            raise DatasetError(f"tfds:{name} has splits {sorted(available)} and no 'train': name the "
                               f"splits, tfds:{name}:TRAIN[:VALIDATION[:TEST]]")
    try:
        datasets = tfds.load(name, split=list(wanted.values()), data_dir=data_dir, download=download)
        return {split: np.concatenate(list(tfds.as_numpy(
                    examples.map(lambda example: example[image_keys[0]]).batch(4096))))
                for split, examples in zip(wanted, datasets)}
    except Exception as error:  # missing files without download, unknown splits, ...
        raise DatasetError(f"tfds:{spec}: {str(error).splitlines()[0]}") from error
