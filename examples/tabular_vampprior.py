"""The VampPrior on real tabular data, against the standard prior.

scikit-learn's bundled breast cancer data (569 tumours x 30 real-valued
features, shipped inside the package: nothing is downloaded) is split
60/20/20 and standardised with the training split's mean and deviation. A
small VAE with your own Keras encoder and decoder and a Gaussian likelihood is
trained twice, with the standard prior and with a VampPrior whose pseudo-inputs
are not clamped (``pseudo_input_map="none"``: the data are real-valued, not in
[0, 1]), each to early stopping on the validation ELBO after a KL warm-up. It
prints one line per prior with the importance-sampled test log-likelihood,
then saves, reloads and exports the VampPrior model.

    pip install scikit-learn    # or: pip install -e ".[test]"
    python examples/tabular_vampprior.py [output directory]
"""
import os
import sys

import keras
import numpy as np
from sklearn.datasets import load_breast_cancer

import tfvamp

LATENT_DIM = 4
HIDDEN_UNITS = 64


def standardised_splits(seed=0):
    """Train/validation/test rows (60/20/20, shuffled with ``seed``), standardised
    with the training rows' mean and standard deviation, float32."""
    features = load_breast_cancer().data
    order = np.random.default_rng(seed).permutation(len(features))
    n_train, n_validation = int(0.6 * len(features)), int(0.2 * len(features))
    train, validation, test = np.split(features[order], [n_train, n_train + n_validation])
    mean, std = train.mean(0), train.std(0)
    return [((part - mean) / std).astype("float32") for part in (train, validation, test)]


def encoder_and_decoder(num_features):
    """q(z|x): x -> 64 tanh -> 64 tanh -> (mean, log-variance); p(x|z): z -> 64 tanh
    -> 64 tanh -> (mean, log-variance) of every feature, ``[B, num_features, 2]``."""
    x = keras.Input((num_features,))
    h = keras.layers.Dense(HIDDEN_UNITS, activation="tanh")(x)
    h = keras.layers.Dense(HIDDEN_UNITS, activation="tanh")(h)
    encoder = keras.Model(x, [keras.layers.Dense(LATENT_DIM)(h), keras.layers.Dense(LATENT_DIM)(h)],
                          name="encoder")
    z = keras.Input((LATENT_DIM,))
    h = keras.layers.Dense(HIDDEN_UNITS, activation="tanh")(z)
    h = keras.layers.Dense(HIDDEN_UNITS, activation="tanh")(h)
    params = keras.layers.Reshape((num_features, 2))(keras.layers.Dense(2 * num_features)(h))
    return encoder, keras.Model(z, params, name="decoder")


def train(prior_name, train_rows, validation_rows, max_epochs, seed=0):
    """A VAE with the ``"standard"`` prior or an unclamped ``"vamp"`` prior (K = 50,
    pseudo-inputs started from training rows), trained with Adam, KL warm-up over
    50 epochs and early stopping (patience 50, best weights kept)."""
    keras.utils.set_random_seed(seed)
    encoder, decoder = encoder_and_decoder(train_rows.shape[1])
    prior = prior_name
    if prior_name == "vamp":
        prior = tfvamp.VampPrior(encoder, train_rows.shape[1:], num_components=50,
                                 pseudo_input_map="none", init_data=train_rows, seed=seed)
    model = tfvamp.VAE(train_rows.shape[1:], encoder=encoder, decoder=decoder,
                       likelihood="gaussian", prior=prior, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    warmup_epochs = min(50, max_epochs)
    model.fit(train_rows, validation_data=(validation_rows,), batch_size=32, epochs=max_epochs,
              verbose=0, callbacks=[
                  tfvamp.KLWarmUp(warmup_epochs),
                  keras.callbacks.EarlyStopping(patience=50, start_from_epoch=warmup_epochs,
                                                restore_best_weights=True)])
    return model


def main(output_dir="tabular_vampprior", max_epochs=1000, num_samples=5000):
    """Trains both priors; returns ``{prior: test log-likelihood}`` (nats per row)."""
    train_rows, validation_rows, test_rows = standardised_splits()
    print(f"breast cancer data: {len(train_rows)}/{len(validation_rows)}/{len(test_rows)} rows "
          f"of {train_rows.shape[1]} standardised features")
    results, models = {}, {}
    for prior_name in ("standard", "vamp"):
        models[prior_name] = model = train(prior_name, train_rows, validation_rows, max_epochs)
        results[prior_name] = float(np.mean(model.log_likelihood(test_rows, num_samples)))
        epochs = len(model.history.epoch)
        print(f"{prior_name:>8} prior: test log-likelihood {results[prior_name]:.2f} nats "
              f"(IS, S={num_samples}), {epochs} epochs", flush=True)

    vamp = models["vamp"]
    pseudo_inputs = vamp.prior.pseudo_inputs().numpy()
    print(f"VampPrior pseudo-inputs range over [{pseudo_inputs.min():.2f}, "
          f"{pseudo_inputs.max():.2f}], {np.mean((pseudo_inputs < 0) | (pseudo_inputs > 1)):.0%} "
          "of their values outside [0, 1]")
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "vamp.keras")
    vamp.save(path)
    restored = keras.models.load_model(path)
    z = vamp.prior.distribution().sample(100, seed=(1, 2))
    same = np.array_equal(restored.prior.distribution().log_prob(z),
                          vamp.prior.distribution().log_prob(z))
    print(f"saved {path}; reloaded: same prior density {same}, encoder shared "
          f"{restored.prior.encoder is restored.encoder}")
    export_path = os.path.join(output_dir, "serving", "1")
    if not os.path.exists(export_path):
        tfvamp.export.save_serving_model(vamp, export_path)
    print(f"exported {export_path} for TensorFlow Serving")
    return results


if __name__ == "__main__":
    main(*sys.argv[1:2])
