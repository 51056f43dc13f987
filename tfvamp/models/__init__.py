"""The paper's models, selectable by name."""
from tfvamp.models.base import LatentVariableModel
from tfvamp.models.hvae import HVAE, ConvHVAE, PixelHVAE
from tfvamp.models.vae import VAE

MODELS = {"vae": VAE, "hvae": HVAE, "convhvae": ConvHVAE, "pixelhvae": PixelHVAE}


def build_model(name, **kwargs):
    """Builds the model called ``name`` (a key of ``MODELS``) with ``kwargs``."""
    try:
        model_class = MODELS[name]
    except KeyError:
        raise ValueError(f"Unknown model {name!r}; valid: {sorted(MODELS)}") from None
    return model_class(**kwargs)


__all__ = ["ConvHVAE", "HVAE", "LatentVariableModel", "MODELS", "PixelHVAE", "VAE",
           "build_model"]
