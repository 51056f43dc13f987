import keras
import numpy as np

from tfvamp.optimizers import AdamNormGrad


def test_adam_norm_grad_equals_adam_on_normalised_gradients():
    gradients = [np.array([3.0, 4.0], "float32"), np.array([[0.5]], "float32")]
    normalised = [g / (np.linalg.norm(g) + 1e-7) for g in gradients]
    ours = [keras.Variable(np.ones_like(g)) for g in gradients]
    reference = [keras.Variable(np.ones_like(g)) for g in gradients]
    norm_grad, adam = AdamNormGrad(0.1), keras.optimizers.Adam(0.1)
    for step in range(3):
        scale = 10.0 ** step  # the update must not depend on the gradient's scale
        norm_grad.apply_gradients(zip([scale * g for g in gradients], ours))
        adam.apply_gradients(zip(normalised, reference))
    for a, b in zip(ours, reference):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    assert not np.allclose(ours[0].numpy(), 1.0)


def test_adam_norm_grad_config_round_trip():
    optimizer = AdamNormGrad(learning_rate=5e-4)
    clone = AdamNormGrad.from_config(optimizer.get_config())
    assert np.isclose(float(clone.learning_rate), 5e-4)
