"""Readers for the dataset file formats; every malformed file is a ``DatasetError``.

Each reader checks the format strictly (sizes, magic numbers, value sets)
before handing arrays on, so a truncated or corrupt file gives a message that
names it instead of an exception from deep inside NumPy or SciPy.
"""
import gzip
import io
import pickle
import struct
import tarfile
import zipfile
import zlib

import numpy as np
import scipy.io

from tfvamp.datasets.core import DatasetError, check_sha256


def read_bytes(path):
    """The bytes of ``path``, decompressed if its name ends in ``.gz``."""
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".gz") and not path.endswith(".tar.gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise DatasetError(f"{path} is not a complete gzip file ({error}); "
                               "it is truncated or corrupt: delete it and get it again.") from error
    return data


def read_verified(path, sha256):
    """``read_bytes(path)`` after checking the SHA-256 of the (decompressed) content."""
    data = read_bytes(path)
    what = f"the decompressed content of {path}" if path.endswith(".gz") else path
    check_sha256(data, sha256, what)
    return data


def idx_images(data, source):
    """An IDX3 ``ubyte`` image file (MNIST) -> uint8 ``[N, rows, cols]``."""
    if len(data) < 16:
        raise DatasetError(f"{source} is truncated: {len(data)} bytes, shorter than an IDX header (16)")
    magic, count, rows, cols = struct.unpack(">iiii", data[:16])
    if magic != 0x00000803:
        raise DatasetError(f"{source} is not an IDX3 ubyte image file (magic number {magic:#010x}, "
                           "expected 0x00000803)")
    expected = 16 + count * rows * cols
    if len(data) != expected:
        raise DatasetError(f"{source} is truncated or corrupt: {len(data)} bytes, but its header "
                           f"promises {count} images of {rows}x{cols} ({expected} bytes)")
    return np.frombuffer(data, np.uint8, offset=16).reshape(count, rows, cols)


def idx_bytes(images):
    """uint8 images ``[N, rows, cols]`` as an IDX3 ``ubyte`` file (the inverse of ``idx_images``)."""
    return struct.pack(">iiii", 0x00000803, *images.shape) + np.ascontiguousarray(images, np.uint8).tobytes()


AMAT_PIXELS = 784
_AMAT_LINE = 2 * AMAT_PIXELS  # 784 digits, 783 spaces and a newline


def amat_images(data, source):
    """Larochelle's binarised-MNIST ``.amat``: one image per line, 784 space-separated 0/1.

    Returns uint8 ``[N, 784]`` in {0, 1}.
    """
    if not data or len(data) % _AMAT_LINE:
        raise DatasetError(
            f"{source} is not a binarised-MNIST .amat file or is truncated: {len(data)} bytes is not a "
            f"positive multiple of {_AMAT_LINE} (one line of {AMAT_PIXELS} space-separated 0/1 per image)")
    chars = np.frombuffer(data, np.uint8).reshape(-1, _AMAT_LINE)
    digits = chars[:, 0::2]
    well_formed = (np.all((digits == ord("0")) | (digits == ord("1")))
                   and np.all(chars[:, 1:-1:2] == ord(" ")) and np.all(chars[:, -1] == ord("\n")))
    if not well_formed:
        raise DatasetError(f"{source} is not a binarised-MNIST .amat file: every line must hold "
                           f"{AMAT_PIXELS} space-separated 0/1 digits")
    return digits - np.uint8(ord("0"))


def amat_bytes(images):
    """Binary images (784 pixels each) as a ``.amat`` file (the inverse of ``amat_images``)."""
    chars = np.full((len(images), _AMAT_LINE), ord(" "), np.uint8)
    chars[:, 0::2] = np.reshape(images, (len(images), AMAT_PIXELS)) + ord("0")
    chars[:, -1] = ord("\n")
    return chars.tobytes()


def npz_arrays(path, keys):
    """The arrays ``keys`` of an ``.npz`` file (no pickles allowed)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in keys if key not in archive.files]
            if missing:
                raise DatasetError(f"{path} lacks the arrays {missing}; it holds {archive.files}")
            return {key: archive[key] for key in keys}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise DatasetError(f"{path} is not a readable .npz file ({error}); "
                           "it is truncated or corrupt: delete it and get it again.") from error


def mat_arrays(source):
    """``scipy.io.loadmat`` of a path or file object."""
    try:
        return scipy.io.loadmat(source)
    except Exception as error:  # scipy raises many types (ValueError, TypeError, OSError...) on a bad file
        raise DatasetError(f"{source} is not a readable MATLAB file ({type(error).__name__}: {error}); "
                           "it is truncated or corrupt: delete it and get it again.") from error


def tar_member(path, name):
    """The bytes of the regular file called ``name`` (at any depth) in the tar archive ``path``."""
    try:
        with tarfile.open(path, "r:*") as archive:
            members = archive.getmembers()
            for member in members:
                if member.isfile() and member.name.rsplit("/", 1)[-1] == name:
                    return archive.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{path} is not a readable tar archive ({error}); "
                           "it is truncated or corrupt: delete it and get it again.") from error
    raise DatasetError(f"{path} holds no file {name}; it holds {[m.name for m in members]}")


# The only globals a pickle of NumPy arrays needs; anything else is refused.
# ``_codecs.encode`` (a pure str -> bytes conversion) is how Python 3 writes
# bytes at pickle protocols 0-2.
_ALLOWED_GLOBALS = {
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays and plain containers; refuses every other callable."""

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise DatasetError(f"Refusing to unpickle {module}.{name}: only NumPy arrays are allowed")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def restricted_pickle_load(data, source="pickle"):
    """``pickle.loads`` that only reconstructs NumPy arrays (Python 2 pickles too).

    A pickle from the internet can run any code when loaded; this one can only
    build lists, dicts, tuples, strings, numbers and NumPy arrays.
    """
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except DatasetError as error:
        raise DatasetError(f"{source}: {error}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, AttributeError,
            KeyError, struct.error) as error:
        raise DatasetError(f"{source} is not a readable pickle ({type(error).__name__}: {error}); "
                           "it is truncated or corrupt: delete it and get it again.") from error


def check_images(images, source, count, shape, low=0.0, high=1.0):
    """Checks a numeric array of ``count`` images of ``shape`` with values in [low, high]."""
    try:
        images = np.asarray(images)
    except ValueError as error:  # e.g. a ragged list
        raise DatasetError(f"{source}: not an array of images ({error})") from error
    if images.dtype.kind not in "uif" or images.size != count * int(np.prod(shape)):
        raise DatasetError(f"{source}: expected {count} numeric images of {shape}, got an array of "
                           f"shape {images.shape} and dtype {images.dtype}")
    if images.size and not (np.all(np.isfinite(images)) and images.min() >= low and images.max() <= high):
        raise DatasetError(f"{source}: values must lie in [{low}, {high}], got "
                           f"[{images.min()}, {images.max()}]")
    return images
