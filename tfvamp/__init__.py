"""tfvamp: VAEs with a VampPrior (Tomczak & Welling, AISTATS 2018) in TensorFlow/Keras.

Everything public is importable from ``tfvamp`` (``tfvamp.__all__``):

```python
import tfvamp

model = tfvamp.VAE((28, 28, 1), prior="vamp")  # the paper's VAE and VampPrior
model = tfvamp.VAE((13,), encoder=enc, decoder=dec, likelihood="gaussian",  # your networks
                   prior=tfvamp.VampPrior(enc, (13,), pseudo_input_map="none"))
```

``tfvamp.serving``, the TensorFlow Serving client, is imported on first use
(it brings gRPC): ``import tfvamp`` alone does not import it.
"""
import importlib

from tfvamp import datasets  # registers the TFDS builders
from tfvamp import diagnostics
from tfvamp import monitoring  # the prior's component statistics while training
from tfvamp import export  # the SavedModel for TF Serving (it depends on the models, not they on it)
from tfvamp.callbacks import KLWarmUp, PaperEarlyStopping, StopOnNonFiniteLoss, warmup_beta
from tfvamp.errors import NonFiniteInputError, NonFiniteLossError
from tfvamp.evaluation import evaluate
from tfvamp.gaussians import DiagonalGaussianMixture, diagonal_gaussian
from tfvamp.layers import DiagonalGaussianHead, GatedConv2D, GatedDense, MaskedConv2D
from tfvamp.likelihoods import (AuthorsDiscretizedLogisticLikelihood, BernoulliLikelihood,
                                BernoulliProbabilitiesLikelihood,
                                ClampedBernoulliLikelihood, DecoderDistribution,
                                DiscretizedLogisticLikelihood, GaussianLikelihood, Likelihood,
                                get_likelihood)
from tfvamp.models import HVAE, VAE, ConvHVAE, LatentVariableModel, PixelHVAE, build_model
from tfvamp.monitoring import PriorMonitor
from tfvamp.objectives import (ElboTerms, ISEstimate, LogTerms, importance_sampled_estimate,
                               importance_sampled_log_likelihood, importance_sampling_bias,
                               importance_sampling_statistics,
                               log_importance_weights, negative_elbo)
from tfvamp.optimizers import AdamNormGrad
from tfvamp.posteriors import posterior_mixture
from tfvamp.priors import MixtureOfGaussiansPrior, Prior, StandardNormalPrior, VampPrior, make_prior

__version__ = "0.1.0"

__all__ = [
    "AdamNormGrad",
    "AuthorsDiscretizedLogisticLikelihood",
    "BernoulliLikelihood",
    "BernoulliProbabilitiesLikelihood",
    "ClampedBernoulliLikelihood",
    "ConvHVAE",
    "DecoderDistribution",
    "DiagonalGaussianHead",
    "DiagonalGaussianMixture",
    "DiscretizedLogisticLikelihood",
    "ElboTerms",
    "GatedConv2D",
    "GatedDense",
    "GaussianLikelihood",
    "HVAE",
    "ISEstimate",
    "KLWarmUp",
    "LatentVariableModel",
    "Likelihood",
    "LogTerms",
    "MaskedConv2D",
    "MixtureOfGaussiansPrior",
    "NonFiniteInputError",
    "NonFiniteLossError",
    "PaperEarlyStopping",
    "PixelHVAE",
    "Prior",
    "PriorMonitor",
    "StandardNormalPrior",
    "StopOnNonFiniteLoss",
    "VAE",
    "VampPrior",
    "__version__",
    "build_model",
    "datasets",
    "diagnostics",
    "diagonal_gaussian",
    "evaluate",
    "export",
    "get_likelihood",
    "importance_sampled_estimate",
    "importance_sampled_log_likelihood",
    "importance_sampling_bias",
    "importance_sampling_statistics",
    "log_importance_weights",
    "make_prior",
    "monitoring",
    "negative_elbo",
    "posterior_mixture",
    "warmup_beta",
]


def __getattr__(name):
    """``tfvamp.serving`` imported when first asked for (it brings gRPC)."""
    if name == "serving":
        return importlib.import_module("tfvamp.serving")
    raise AttributeError(f"module 'tfvamp' has no attribute {name!r}")
