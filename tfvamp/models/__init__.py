"""The paper's models, selectable by name."""
from tfvamp.models.base import LatentVariableModel
from tfvamp.models.vae import VAE

MODELS = {"vae": VAE}


def build_model(name, **kwargs):
    """Builds the model called ``name`` (a key of ``MODELS``) with ``kwargs``."""
    try:
        model_class = MODELS[name]
    except KeyError:
        raise ValueError(f"Unknown model {name!r}; valid: {sorted(MODELS)}") from None
    return model_class(**kwargs)


__all__ = ["LatentVariableModel", "MODELS", "VAE", "build_model"]
