"""Rebuilding a user's Keras objects (encoders, decoders, priors, pseudo-input maps,
likelihood functions) from a saved model's config, with one clear line when Keras does
not know a class or function the config names."""
import re

import keras

_UNKNOWN = re.compile(r"Could not locate (?:class|function) '([^']+)'")


def deserialize(config, what):
    """``keras.saving.deserialize_keras_object(config)``; a class or function of the config
    that is neither registered nor in ``custom_objects`` is a ``ValueError`` of one line
    naming it, ``what`` is rebuilt (e.g. "the VAE's encoder") and the two fixes (Keras'
    own message, wrapped by every enclosing object, repeats their whole configs)."""
    try:
        return keras.saving.deserialize_keras_object(config)
    except TypeError as error:
        unknown = _UNKNOWN.search(str(error))
        if unknown is None:
            raise
        name = unknown.group(1)
        raise ValueError(
            f"Cannot rebuild {what}: Keras does not know {name!r}. Pass custom_objects="
            f"{{{name!r}: {name}}} to keras.saving.load_model, or decorate {name} with "
            "@keras.saving.register_keras_serializable() and import it before loading.") from None
