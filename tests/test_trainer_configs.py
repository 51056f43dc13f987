"""Every configs/*.cfg is a valid experiment of the paper and builds its model.

While the models and datasets are added in parallel, a config whose model or
dataset is not registered yet is still checked: its flags must exist in
trainers.train and its values must be the paper's (configs.PAPER_*); as soon
as the model is registered (after merging, all are), the model is built, and
as soon as model and dataset are registered the file is parsed by absl
against the trainer's real flag definitions.
"""
import copy

import pytest
from absl import flags

import configs
from tfvamp import models, priors
from trainers import train

# Image shape and likelihood of each dataset of the paper (supplementary 8.4.1).
PAPER_DATA = {
    "static_mnist": ((28, 28, 1), "bernoulli"),
    "dynamic_mnist": ((28, 28, 1), "bernoulli"),
    "omniglot": ((28, 28, 1), "bernoulli"),
    "caltech": ((28, 28, 1), "bernoulli"),
    "freyfaces": ((28, 20, 1), "discretized_logistic"),
    "histopathology": ((28, 28, 1), "discretized_logistic"),
}
# The paper's protocol, the same for every experiment.
PROTOCOL = {"latent_dim": "40", "hidden_units": "300", "epochs": "2000", "batch_size": "100",
            "learning_rate": "0.0005", "warmup_epochs": "100", "early_stopping_patience": "50",
            "eval_samples": "5000", "kernel_initializer": "he_normal"}
TRAIN_FLAGS = set(train.flag_values())
CONFIG_PATHS = configs.config_paths()


def test_there_is_a_config_for_every_experiment_of_the_paper():
    names = {path.rsplit("/", 1)[-1] for path in CONFIG_PATHS}
    expected = {f"{d}_{m}_{p}.cfg" for d in configs.PAPER_DATASETS for m in configs.PAPER_MODELS
                for p in ("standard", "vamp")}
    expected |= {"dynamic_mnist_vae_mog.cfg", "dynamic_mnist_vae_vampdata.cfg",
                 "dynamic_mnist_hvae_vampdata.cfg"}
    assert names == expected
    assert set(PAPER_DATA) == set(configs.PAPER_DATASETS)
    assert set(configs.PAPER_PRIORS) == set(priors.PRIORS)


@pytest.mark.parametrize("path", CONFIG_PATHS, ids=lambda p: p.rsplit("/", 1)[-1])
def test_config_parses_and_builds_its_model(path):
    values = configs.read_config(path)
    assert set(values) <= TRAIN_FLAGS, f"unknown flags {set(values) - TRAIN_FLAGS}"
    name = path.rsplit("/", 1)[-1][:-len(".cfg")]
    dataset, model_name, prior = values["dataset"], values["model"], values["prior"]
    from_data = values["pseudo_inputs_init"] == "data"
    assert name == f"{dataset}_{model_name}_{prior}{'data' if from_data else ''}"
    assert dataset in configs.PAPER_DATASETS
    assert model_name in configs.PAPER_MODELS
    assert prior in configs.PAPER_PRIORS
    assert values["pseudo_inputs_init"] in ("random", "data")
    assert not from_data or prior == "vamp"
    assert {k: values[k] for k in PROTOCOL} == PROTOCOL
    if prior != "standard":
        assert int(values["num_components"]) == (1000 if dataset == "omniglot" else 500)

    parsed = copy.deepcopy(flags.FLAGS)
    parsed(["train", f"--flagfile={path}"])  # the real flag definitions (enums, bounds)
    assert (parsed.dataset, parsed.model, parsed.prior) == (dataset, model_name, prior)
    input_shape, likelihood = PAPER_DATA[dataset]
    model = models.build_model(
        model_name, input_shape=input_shape, likelihood=likelihood, prior=prior,
        latent_dim=int(values["latent_dim"]), hidden_units=int(values["hidden_units"]),
        num_components=int(values.get("num_components", 500)))
    assert model.prior_name == prior and model.image_shape == input_shape
    if prior != "standard":
        assert model.prior.num_components == int(values["num_components"])
