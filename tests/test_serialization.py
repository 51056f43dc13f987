"""A saved model whose user class is not known to Keras when it is loaded: one line naming the
class and the two fixes, instead of Keras' message repeating every enclosing config."""
import keras
import pytest
import tensorflow as tf

import tfvamp


class Sampling(keras.layers.Layer):  # Keras' VAE example's layer, not registered
    def call(self, inputs):
        z_mean, z_log_var = inputs
        return z_mean + tf.exp(0.5 * z_log_var) * keras.random.normal(tf.shape(z_mean))


def test_an_unregistered_user_layer_is_named_in_one_line_and_custom_objects_loads_it(tmp_path):
    x = keras.Input((6, 6, 1))
    h = keras.layers.Dense(8, activation="relu")(keras.layers.Flatten()(x))
    mean, log_var = keras.layers.Dense(2, name="z_mean")(h), keras.layers.Dense(2, name="z_log_var")(h)
    encoder = keras.Model(x, [mean, log_var, Sampling()([mean, log_var])])
    z = keras.Input((2,))
    decoder = keras.Model(z, keras.layers.Reshape((6, 6, 1))(keras.layers.Dense(36)(z)))
    model = tfvamp.VAE((6, 6, 1), encoder=encoder, decoder=decoder, likelihood="bernoulli", prior="vamp",
                       num_components=3)
    path = str(tmp_path / "model.keras")
    model.save(path)
    with pytest.raises(ValueError) as error:
        keras.saving.load_model(path)
    message = str(error.value)
    assert "Keras does not know 'Sampling'" in message and "custom_objects={'Sampling': Sampling}" in message
    assert "register_keras_serializable" in message and "\n" not in message and len(message) < 400
    loaded = keras.saving.load_model(path, custom_objects={"Sampling": Sampling})
    assert isinstance(loaded, tfvamp.VAE)
