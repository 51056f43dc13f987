"""The paper's training schedule, value by value: the KL warm-up's beta per
epoch and early stopping's patience counter, which is reset while the
warm-up lasts (the authors' ``if epoch < warmup: e = 0``)."""
import keras
import numpy as np
import pytest

from tfvamp import models
from tfvamp.callbacks import KLWarmUp, PaperEarlyStopping, warmup_beta


def _scripted_early_stopping(val_losses, patience, warmup_epochs):
    """``PaperEarlyStopping`` fed ``val_losses`` epoch by epoch: its ``wait``
    after each epoch, and the 1-based epoch it stopped after (None: never)."""
    early_stopping = PaperEarlyStopping(patience=patience, warmup_epochs=warmup_epochs)
    early_stopping.set_model(keras.Model())
    waits = []
    for epoch, val_loss in enumerate(val_losses):
        early_stopping.on_epoch_end(epoch, {"val_loss": val_loss})
        waits.append(early_stopping.wait)
        if getattr(early_stopping.model, "stop_training", False):
            return waits, epoch + 1
    return waits, None


def test_early_stopping_ignores_epochs_without_improvement_during_the_warm_up():
    # The validation loss (beta = 1) typically rises while beta grows: epochs 2-4 of a
    # 5-epoch warm-up do not improve on epoch 1, more of them than the patience.
    waits, stopped_after = _scripted_early_stopping(
        [5.0, 6.0, 7.0, 7.5, 8.0, 8.5, 9.0], patience=1, warmup_epochs=5)
    # Reset while epoch < warm-up; counted from epoch 5, the warm-up's last.
    assert waits == [0, 0, 0, 0, 1, 2]
    assert stopped_after == 6


def test_early_stopping_counts_from_the_warm_ups_last_epoch_after_an_improvement():
    waits, stopped_after = _scripted_early_stopping(
        [5.0, 4.0, 4.5, 4.6, 4.7, 4.8, 3.0, 3.5, 3.6], patience=2, warmup_epochs=5)
    assert waits == [0, 0, 0, 0, 1, 2, 0, 1, 2]
    assert stopped_after is None


def test_early_stopping_without_warm_up_counts_from_the_first_epoch():
    waits, stopped_after = _scripted_early_stopping([5.0, 6.0, 7.0, 8.0], patience=2,
                                                    warmup_epochs=0)
    assert waits == [0, 1, 2, 3] and stopped_after == 4


@pytest.mark.parametrize("warmup_epochs, expected", [
    (4, [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]),
    (1, [1.0] * 6),
    (0, [1.0] * 6),
])
def test_warmup_beta_is_epoch_over_warmup_capped_at_one(warmup_epochs, expected):
    np.testing.assert_allclose([warmup_beta(epoch, warmup_epochs) for epoch in range(1, 7)], expected)


def test_kl_warm_up_sets_beta_per_epoch_and_the_training_loss_uses_it():
    """Keras' fit with ``KLWarmUp(4)`` and one batch per epoch: the logged beta
    is epoch / 4 capped at 1, and each epoch's loss is reconstruction + beta * KL."""
    model = models.build_model("vae", input_shape=(4, 4, 1), prior="standard", latent_dim=2,
                               hidden_units=8, seed=0)
    rng = np.random.default_rng(0)
    for variable in model.trainable_variables:  # posteriors far from N(0, I): a KL of nats
        variable.assign(rng.normal(0.0, 1.0, variable.shape).astype(np.float32))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    images = (rng.random((8, 4, 4, 1)) < 0.5).astype(np.float32)
    history = model.fit(images, epochs=6, batch_size=8, verbose=0,
                        callbacks=[KLWarmUp(warmup_epochs=4)]).history
    np.testing.assert_allclose(history["beta"], [0.25, 0.5, 0.75, 1.0, 1.0, 1.0])
    beta = np.asarray(history["beta"])
    np.testing.assert_allclose(history["loss"],
                               np.asarray(history["reconstruction"]) + beta * np.asarray(history["kl"]),
                               rtol=1e-5)
    assert np.all(np.asarray(history["kl"]) > 1.0)  # so a wrong beta shows in the loss
