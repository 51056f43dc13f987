"""TensorFlow Datasets builders for the four datasets TFDS lacks in the form VAE papers use.

Importing ``tfvamp.datasets`` registers them, so ``tfds.load("caltech101_silhouettes",
split="test")`` works. Each builder's splits are what the dataset module's
``read_splits`` returns (the same function ``load_dataset`` uses), in its order
(TFDS's shuffling is disabled), before the paper's preprocessing (scaling,
clipping, binarisation), which ``to_image_dataset`` applies on top.

Where the file comes from: ``manual_dir`` (``tfds.download.DownloadConfig``),
when it exists and is not empty, laid out as ``../shared/data``
(``<folder>/<file>`` or the file at its top); otherwise, as for
``load_dataset`` without a data directory, ``$TFVAMP_DATA_DIR``, else the
tfvamp cache, downloading the file there from its canonical URL (Caltech
uses the copy embedded in the package instead). The checksums and format
checks are those of ``load_dataset``; every failure is a ``DatasetError``.
"""
import os

import numpy as np
import tensorflow_datasets as tfds

from tfvamp.datasets import caltech, freyfaces, histopathology, omniglot


def manual_dir_in_force(dl_manager):
    """``manual_dir`` when it exists and holds files, else None."""
    try:
        return os.fspath(dl_manager.manual_dir)
    except AssertionError:  # TFDS's answer for a missing or empty manual directory
        return None


def _instructions(file_names, folder, url):
    return (f"Put {' or '.join(file_names)} (from {url}) in the manual directory, at its top or in "
            f"{folder}/ (the layout of ../shared/data). Without a manual directory the file is looked "
            "for in $TFVAMP_DATA_DIR, else in the tfvamp cache, and downloaded there if missing.")


class _PaperDataset(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """The shared part: metadata from class attributes, splits from ``source.read_splits``."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    SUPERVISED_KEYS = None

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, description=self.DESCRIPTION, features=self._features(),
                                     supervised_keys=self.SUPERVISED_KEYS, homepage=self.HOMEPAGE,
                                     citation=self.CITATION, disable_shuffling=True)

    def _split_generators(self, dl_manager):
        source = self.source
        splits = source.read_splits(source.find_file(manual_dir_in_force(dl_manager)))
        return {split: self._generate_examples(features) for split, features in splits.items()}

    def _generate_examples(self, features):
        for index in range(len(features["image"])):
            yield index, {key: values[index] for key, values in features.items()}


class Caltech101Silhouettes(_PaperDataset):
    name = "caltech101_silhouettes"
    source = caltech
    DESCRIPTION = (
        "Caltech 101 Silhouettes, 28x28 binary: the fixed split 1 of Marlin et al. (2010), 4,100 train / "
        "2,264 validation / 2,307 test, with the labels of the 101 classes. Images upright, the object 1 on "
        "a background of 0 (the file stores them column-major with the object 0). The file embedded in "
        "tfvamp is the default source, so no download is needed.")
    HOMEPAGE = "https://people.cs.umass.edu/~marlin/data.shtml"
    CITATION = """@inproceedings{marlin2010inductive,
  title={Inductive Principles for Restricted {Boltzmann} Machine Learning},
  author={Marlin, Benjamin M. and Swersky, Kevin and Chen, Bo and de Freitas, Nando},
  booktitle={Proceedings of the Thirteenth International Conference on Artificial Intelligence and Statistics},
  pages={509--516},
  year={2010}
}"""
    MANUAL_DOWNLOAD_INSTRUCTIONS = _instructions([caltech.FILENAME], caltech.FOLDER, caltech.URL)
    SUPERVISED_KEYS = ("image", "label")

    def _features(self):
        return tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(28, 28, 1)),
            "label": tfds.features.ClassLabel(names=caltech.class_names()),
        })


class FreyFaces(_PaperDataset):
    name = "frey_faces"
    source = freyfaces
    DESCRIPTION = (
        "Frey Faces: 1,965 grey 28x20 images of Brendan Frey's face, as in the VampPrior authors' "
        "freyfaces.pkl, shuffled with a fixed seed into 1,565 train / 200 validation / 200 test "
        "(the VampPrior paper's split sizes). Pixels 0..255.")
    HOMEPAGE = "https://cs.nyu.edu/~roweis/data.html"
    CITATION = """@inproceedings{tomczak2018vae,
  title={{VAE} with a {VampPrior}},
  author={Tomczak, Jakub M. and Welling, Max},
  booktitle={Proceedings of the Twenty-First International Conference on Artificial Intelligence and Statistics},
  pages={1214--1223},
  year={2018}
}"""
    MANUAL_DOWNLOAD_INSTRUCTIONS = _instructions([freyfaces.FILENAME], freyfaces.FOLDER, freyfaces.URL)

    def _features(self):
        return tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(28, 20, 1))})


class OmniglotChardata(_PaperDataset):
    name = "omniglot_chardata"
    source = omniglot
    DESCRIPTION = (
        "OMNIGLOT 28x28 as in Burda et al.'s chardata.mat (the IWAE split): 24,345 training images, of "
        "which 1,345 picked at random (fixed seed) are the validation split (so 23,000 train), and 8,070 "
        "test. Grey values in [0, 1], float32; `train+validation` is IWAE's training set.")
    HOMEPAGE = "https://github.com/yburda/iwae"
    CITATION = """@article{lake2015human,
  title={Human-level concept learning through probabilistic program induction},
  author={Lake, Brenden M. and Salakhutdinov, Ruslan and Tenenbaum, Joshua B.},
  journal={Science},
  volume={350},
  number={6266},
  pages={1332--1338},
  year={2015}
}
@inproceedings{burda2016importance,
  title={Importance Weighted Autoencoders},
  author={Burda, Yuri and Grosse, Roger and Salakhutdinov, Ruslan},
  booktitle={International Conference on Learning Representations},
  year={2016}
}"""
    MANUAL_DOWNLOAD_INSTRUCTIONS = _instructions([omniglot.FILENAME], omniglot.FOLDER, omniglot.URL)

    def _features(self):
        return tfds.features.FeaturesDict({"image": tfds.features.Tensor(shape=(28, 28, 1), dtype=np.float32)})


class HistopathologyGray(_PaperDataset):
    name = "histopathology_gray"
    source = histopathology
    DESCRIPTION = (
        "Histopathology patches, grey 28x28, as in Tomczak and Welling's histopathology.pkl: 6,800 train / "
        "2,000 validation / 2,000 test, values in [0, 1] (float32).")
    HOMEPAGE = "https://github.com/jmtomczak/vae_householder_flow"
    CITATION = """@article{tomczak2016improving,
  title={Improving Variational Auto-Encoders using {Householder} Flow},
  author={Tomczak, Jakub M. and Welling, Max},
  journal={arXiv preprint arXiv:1611.09630},
  year={2016}
}"""
    MANUAL_DOWNLOAD_INSTRUCTIONS = _instructions([histopathology.ARCHIVE, histopathology.PICKLE],
                                                 histopathology.FOLDER, histopathology.URL)

    def _features(self):
        return tfds.features.FeaturesDict({"image": tfds.features.Tensor(shape=(28, 28, 1), dtype=np.float32)})
