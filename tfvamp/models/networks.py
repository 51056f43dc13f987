"""The paper's networks, as small Keras functional models and layers.

Encoders map inputs to ``(mean, log_variance)`` of a diagonal Gaussian;
decoders map latents to the likelihood's parameters, ``[B, H, W, C, P]``.
The two-level models are assembled from ``HierarchyParts``; the builders at
the end give the parts of the HVAE, the convHVAE and the PixelHVAE.
"""
from typing import NamedTuple, Optional

import keras
import numpy as np
import tensorflow as tf

from tfvamp.layers import DiagonalGaussianHead, GatedConv2D, GatedDense, MaskedConv2D, dense_layer


def gated_mlp_encoder(input_shape, latent_dim, hidden_units=300, name="encoder"):
    """``q(z|x)``: x -> GatedDense(300) -> GatedDense(300) -> (mean, log-variance).

    With ``input_shape = (d,)`` it is also the HVAE's ``p(z1|z2)``.
    """
    images = keras.Input(shape=input_shape, name="images")
    h = keras.layers.Flatten()(images)
    h = GatedDense(hidden_units, name="gated_dense_1")(h)
    h = GatedDense(hidden_units, name="gated_dense_2")(h)
    mean, log_variance = DiagonalGaussianHead(latent_dim, name="gaussian")(h)
    return keras.Model(images, [mean, log_variance], name=name)


def gated_mlp_decoder(latent_dim, output_shape, num_params, hidden_units=300, name="decoder"):
    """``p(x|z)``: z -> GatedDense(300) -> GatedDense(300) -> likelihood parameters."""
    latents = keras.Input(shape=(latent_dim,), name="latents")
    h = GatedDense(hidden_units, name="gated_dense_1")(latents)
    h = GatedDense(hidden_units, name="gated_dense_2")(h)
    return keras.Model(latents, _params_head(h, output_shape, num_params), name=name)


def _params_head(features, output_shape, num_params):
    h = dense_layer(int(np.prod(output_shape)) * num_params, name="params")(features)
    return keras.layers.Reshape(tuple(output_shape) + (num_params,))(h)


# -- convolutional parts (the authors' convHVAE) --------------------------------------
# (kernel size, stride) of the encoders' gated convolutions; with ``filters = 64``
# their widths are 32, 32, 64, 64 and 6 (the authors' convHVAE).
CONV_ENCODER_Z2 = ((7, 1), (3, 2), (5, 1), (3, 2), (3, 1))
CONV_ENCODER_Z1 = ((3, 1), (3, 2), (3, 1), (3, 2), (3, 1))
OUTPUT_MAPS = 6


def gated_conv_features(input_shape, layers=CONV_ENCODER_Z2, filters=64, name="conv_features"):
    """Images -> gated convolutions ('same' padding) of widths ``filters/2,
    filters/2, filters, filters, 6`` -> flattened features."""
    widths = (filters // 2, filters // 2, filters, filters, OUTPUT_MAPS)
    images = keras.Input(shape=input_shape, name="images")
    h = images
    for i, (width, (kernel_size, strides)) in enumerate(zip(widths, layers)):
        h = GatedConv2D(width, kernel_size, strides, name=f"gated_conv_{i + 1}")(h)
    return keras.Model(images, keras.layers.Flatten()(h), name=name)


def gated_conv_encoder(input_shape, latent_dim, filters=64, name="encoder"):
    """convHVAE's ``q(z2|x)``: gated convs 7x7/32, 3x3 s2/32, 5x5/64, 3x3 s2/64,
    3x3/6, flatten, then (mean, log-variance)."""
    images = keras.Input(shape=input_shape, name="images")
    h = gated_conv_features(input_shape, CONV_ENCODER_Z2, filters, name="features")(images)
    mean, log_variance = DiagonalGaussianHead(latent_dim, name="gaussian")(h)
    return keras.Model(images, [mean, log_variance], name=name)


def latents_to_image_maps(latent_dims, image_shape, name="latent_maps"):
    """``(z1, z2)`` -> one GatedDense per latent to an ``H x W x C`` map each,
    stacked on the channel axis: ``[B, H, W, 2C]``."""
    inputs = [keras.Input(shape=(d,), name=f"z{i + 1}") for i, d in enumerate(latent_dims)]
    size = int(np.prod(image_shape))
    maps = [keras.layers.Reshape(image_shape)(GatedDense(size, name=f"gated_dense_z{i + 1}")(z))
            for i, z in enumerate(inputs)]
    return keras.Model(inputs, keras.layers.Concatenate()(maps), name=name)


def gated_conv_decoder(latent_dims, image_shape, num_params, filters=64, num_layers=4,
                       name="p_x"):
    """convHVAE's ``p(x|z1,z2)``: the latents mapped by gated dense layers to an
    image-sized map, then ``num_layers`` gated convs 3x3/64 and a 1x1 conv to
    the likelihood parameters (exactly ``H x W``: 'same' padding, no striding)."""
    inputs = [keras.Input(shape=(d,), name=f"z{i + 1}") for i, d in enumerate(latent_dims)]
    maps = latents_to_image_maps(latent_dims, image_shape)(inputs)
    h = keras.layers.Flatten()(maps)
    h = GatedDense(int(np.prod(image_shape)), name="gated_dense_joint")(h)
    h = keras.layers.Reshape(image_shape)(h)
    for i in range(num_layers):
        h = GatedConv2D(filters, 3, name=f"gated_conv_{i + 1}")(h)
    channels = image_shape[-1]
    h = keras.layers.Conv2D(channels * num_params, 1, name="params")(h)
    params = keras.layers.Reshape(tuple(image_shape) + (num_params,))(h)
    return keras.Model(inputs, params, name=name)


# -- PixelCNN (the authors' PixelHVAE decoder) -------------------------------------------
@keras.saving.register_keras_serializable(package="tfvamp")
class PixelCNN(keras.layers.Layer):
    """Autoregressive ``p(x | c) = prod_i p(x_i | x_<i, c)`` over pixels in raster order.

    One mask-A convolution of ``x`` (plus an unmasked convolution of the
    conditioning maps ``c``), then ``num_layers - 1`` mask-B convolutions, ReLU
    after each, and a 1x1 convolution to the likelihood's parameters. ``call``
    is teacher forcing (all pixels' parameters at once, for the ELBO);
    ``sample`` draws pixel by pixel. The authors also put BatchNorm after each
    masked convolution; it is left out so that a pixel's output does not
    depend on the rest of the batch.
    """

    def __init__(self, image_shape, conditioning_channels, num_params, num_layers=8,
                 filters=64, kernel_size=3, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.conditioning_channels = int(conditioning_channels)
        self.num_params = int(num_params)
        self.num_layers = int(num_layers)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        if self.num_layers < 1:
            raise ValueError(f"PixelCNN needs at least one layer, got {num_layers}")
        height, width, channels = self.image_shape
        self.masked = [MaskedConv2D(self.filters, self.kernel_size, "A" if i == 0 else "B",
                                    name=f"masked_conv_{i + 1}") for i in range(self.num_layers)]
        self.conditioning = keras.layers.Conv2D(self.filters, self.kernel_size, padding="same",
                                                use_bias=False, name="conditioning")
        self.output_conv = keras.layers.Conv2D(channels * self.num_params, 1, name="params")
        self.masked[0].build((None, height, width, channels))
        for layer in self.masked[1:]:
            layer.build((None, height, width, self.filters))
        self.conditioning.build((None, height, width, self.conditioning_channels))
        self.output_conv.build((None, height, width, self.filters))
        self.built = True
        self._compiled_sample = tf.function(self._sample, jit_compile=True)

    def _params(self, features):
        return tf.reshape(self.output_conv(features),
                          tf.concat([tf.shape(features)[:-1], [-1, self.num_params]], 0))

    def call(self, x, conditioning):
        """Teacher forcing: parameters ``[B, H, W, C, P]`` of every pixel given ``x``."""
        h = tf.nn.relu(self.masked[0](x) + self.conditioning(conditioning))
        for layer in self.masked[1:]:
            h = tf.nn.relu(layer(h))
        return self._params(h)

    def sample(self, conditioning, likelihood, seed):
        """Images ``[B, H, W, C]`` drawn pixel by pixel with ``likelihood.sample``.

        Compiled with XLA. Each step computes every layer at the current pixel
        only, reading its inputs from per-layer caches of earlier pixels: with
        the masks, those are final once written (van den Oord et al., 2016).
        """
        images, _ = self._sample_compiled(conditioning, likelihood, seed)
        return images

    def _sample_compiled(self, conditioning, likelihood, seed):
        """The images, and the parameters ``[B, H, W, C, P]`` each pixel was drawn from."""
        return self._compiled_sample(tf.cast(conditioning, tf.float32), likelihood,
                                     tf.convert_to_tensor(seed, tf.int32))

    def _sample(self, conditioning, likelihood, seed):
        height, width, channels = self.image_shape
        k, pad = self.kernel_size, self.kernel_size // 2
        batch = tf.shape(conditioning)[0]
        # Caches laid out [H + 2 pad, W + 2 pad, B, channels]; the zero border is
        # the 'same' padding of teacher forcing.
        def cache(depth):
            return tf.zeros([height + 2 * pad, width + 2 * pad, batch, depth])

        bias = [layer.bias for layer in self.masked]
        kernels = [layer.masked_kernel() for layer in self.masked]
        # The sampler computes in float32 in every precision.
        extra = tf.transpose(tf.cast(self.conditioning(conditioning), tf.float32),
                             [1, 2, 0, 3])  # [H, W, B, F]
        out_kernel = self.output_conv.kernel[0, 0]
        out_bias = self.output_conv.bias

        def step(i, caches, params):
            row, col = i // width, i % width
            at = [[row + pad, col + pad]]
            for layer, (kernel, b) in enumerate(zip(kernels, bias)):
                if layer > 0:
                    caches[layer] = tf.tensor_scatter_nd_update(caches[layer], at, h[None])
                window = tf.slice(caches[layer], [row, col, 0, 0], [k, k, batch, -1])
                h = tf.einsum("ijbc,ijcf->bf", window, kernel) + b
                h = tf.nn.relu(h + extra[row, col] if layer == 0 else h)
            pixel_params = tf.reshape(tf.matmul(h, out_kernel) + out_bias,
                                      [batch, 1, 1, channels, self.num_params])
            pixel = likelihood.sample(pixel_params, seed=tf.random.experimental.stateless_fold_in(
                seed, i))[:, 0, 0, :]
            caches[0] = tf.tensor_scatter_nd_update(caches[0], at, pixel[None])
            params = tf.tensor_scatter_nd_update(params, [[row, col]], pixel_params[None, :, 0, 0])
            return i + 1, caches, params

        caches = [cache(channels)] + [cache(self.filters) for _ in range(self.num_layers - 1)]
        params = tf.zeros([height, width, batch, channels, self.num_params])
        _, caches, params = tf.while_loop(
            lambda i, *_: i < height * width, step, (tf.constant(0), caches, params))
        images = tf.transpose(caches[0][pad:pad + height, pad:pad + width], [2, 0, 1, 3])
        return images, tf.transpose(params, [2, 0, 1, 3, 4])

    def get_config(self):
        config = super().get_config()
        config.update(
            image_shape=self.image_shape,
            conditioning_channels=self.conditioning_channels,
            num_params=self.num_params,
            num_layers=self.num_layers,
            filters=self.filters,
            kernel_size=self.kernel_size,
        )
        return config


# -- the parts of the two-level models ---------------------------------------------------
class HierarchyParts(NamedTuple):
    """The networks of a two-level VAE (paper, Sec. 3.3: HVAE with L = 2).

    ``q_z2(x)`` and ``p_z1(z2)``, ``q_z1([q_z1_features(x), z2])`` give the
    (mean, log-variance) of ``q(z2|x)``, ``p(z1|z2)`` and ``q(z1|x,z2)``;
    ``q_z1_features`` runs once per image, not once per sample. ``p_x([z1, z2])``
    gives the likelihood parameters, or, with a ``pixelcnn``, its
    conditioning maps.
    """

    q_z2: keras.Model
    q_z1_features: keras.Model
    q_z1: keras.Model
    p_z1: keras.Model
    p_x: keras.Model
    pixelcnn: Optional[PixelCNN] = None


def q_z1_joint(feature_dim, latent_dim, z2_units, hidden_units=300, name="q_z1"):
    """``q(z1|x,z2)``'s joint part: x's features and GatedDense(z2), concatenated,
    then GatedDense(300) and (mean, log-variance)."""
    features = keras.Input(shape=(feature_dim,), name="x_features")
    z2 = keras.Input(shape=(latent_dim,), name="z2")
    h_z2 = GatedDense(z2_units, name="gated_dense_z2")(z2)
    h = GatedDense(hidden_units, name="gated_dense_joint")(
        keras.layers.Concatenate()([features, h_z2]))
    mean, log_variance = DiagonalGaussianHead(latent_dim, name="gaussian")(h)
    return keras.Model([features, z2], [mean, log_variance], name=name)


def mlp_hvae_parts(image_shape, latent_dim, num_params, hidden_units=300):
    """HVAE (L = 2): every network of GatedDense layers of width 300."""
    features = keras.Sequential(
        [keras.Input(image_shape), keras.layers.Flatten(),
         GatedDense(hidden_units, name="gated_dense_x")], name="q_z1_features")
    z1 = keras.Input(shape=(latent_dim,), name="z1")
    z2 = keras.Input(shape=(latent_dim,), name="z2")
    h = keras.layers.Concatenate()([GatedDense(hidden_units, name="gated_dense_z1")(z1),
                                    GatedDense(hidden_units, name="gated_dense_z2")(z2)])
    h = GatedDense(hidden_units, name="gated_dense_joint")(h)
    p_x = keras.Model([z1, z2], _params_head(h, image_shape, num_params), name="p_x")
    return HierarchyParts(
        q_z2=gated_mlp_encoder(image_shape, latent_dim, hidden_units, name="q_z2"),
        q_z1_features=features,
        q_z1=q_z1_joint(hidden_units, latent_dim, hidden_units, hidden_units),
        p_z1=gated_mlp_encoder((latent_dim,), latent_dim, hidden_units, name="p_z1"),
        p_x=p_x,
    )


def _conv_encoder_parts(image_shape, latent_dim, hidden_units, conv_filters):
    features = gated_conv_features(image_shape, CONV_ENCODER_Z1, conv_filters,
                                   name="q_z1_features")
    feature_dim = int(features.output.shape[-1])
    return dict(
        q_z2=gated_conv_encoder(image_shape, latent_dim, conv_filters, name="q_z2"),
        q_z1_features=features,
        q_z1=q_z1_joint(feature_dim, latent_dim, feature_dim, hidden_units),
        p_z1=gated_mlp_encoder((latent_dim,), latent_dim, hidden_units, name="p_z1"),
    )


def conv_hvae_parts(image_shape, latent_dim, num_params, hidden_units=300, conv_filters=64):
    """convHVAE: the HVAE with gated-convolutional encoders and decoder."""
    return HierarchyParts(
        **_conv_encoder_parts(image_shape, latent_dim, hidden_units, conv_filters),
        p_x=gated_conv_decoder((latent_dim, latent_dim), image_shape, num_params, conv_filters),
    )


def pixel_hvae_parts(image_shape, latent_dim, num_params, hidden_units=300, conv_filters=64):
    """PixelHVAE: the convHVAE's encoders; ``p(x|z1,z2)`` a PixelCNN (8 masked
    3x3/64 layers, mask A then B) conditioned on image-sized maps of z1 and z2."""
    p_x = latents_to_image_maps((latent_dim, latent_dim), image_shape, name="p_x")
    return HierarchyParts(
        **_conv_encoder_parts(image_shape, latent_dim, hidden_units, conv_filters),
        p_x=p_x,
        pixelcnn=PixelCNN(image_shape, int(p_x.output.shape[-1]), num_params,
                          filters=conv_filters, name="pixelcnn"),
    )
