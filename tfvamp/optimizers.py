"""The authors' optimiser: Adam on per-variable normalised gradients."""
import keras
from keras import ops

NORM_EPSILON = 1e-7


@keras.saving.register_keras_serializable(package="tfvamp")
class AdamNormGrad(keras.optimizers.Adam):
    """Adam whose gradient for each variable is first divided by its L2 norm,
    ``g / (||g||_2 + 1e-7)``, as the authors' ``AdamNormGrad`` does.

    Under a ``tf.distribute`` strategy the normalisation applies to the
    all-reduced gradient, so it does not depend on the number of replicas.
    """

    def update_step(self, gradient, variable, learning_rate):
        gradient = gradient / (ops.sqrt(ops.sum(ops.square(gradient))) + NORM_EPSILON)
        super().update_step(gradient, variable, learning_rate)
