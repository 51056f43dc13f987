"""Training schedule of the paper as Keras callbacks."""
import math

import keras


def warmup_beta(epoch, warmup_epochs):
    """KL warm-up: beta = epoch / warmup_epochs for the 1-based ``epoch``, at most 1."""
    if warmup_epochs <= 0:
        return 1.0
    return min(1.0, epoch / warmup_epochs)


class KLWarmUp(keras.callbacks.Callback):
    """Sets ``model.beta`` at the start of every epoch (linear warm-up)."""

    def __init__(self, warmup_epochs):
        super().__init__()
        self.warmup_epochs = int(warmup_epochs)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.beta.assign(warmup_beta(epoch + 1, self.warmup_epochs))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["beta"] = float(self.model.beta.numpy())


class EarlyStoppingWithBestWeights(keras.callbacks.Callback):
    """Early stopping on the validation loss, as the authors' code does it.

    The best weights are remembered every epoch; the patience counter only runs
    once the warm-up is over; training stops once the validation loss has not
    improved for more than ``patience`` epochs, and the best weights are
    restored at the end of training.
    """

    def __init__(self, patience, warmup_epochs=0, monitor="val_loss"):
        super().__init__()
        self.patience = int(patience)
        self.warmup_epochs = int(warmup_epochs)
        self.monitor = monitor
        self.best = math.inf
        self.best_epoch = None
        self.best_weights = None
        self.wait = 0

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise ValueError(f"EarlyStoppingWithBestWeights needs {self.monitor!r} in the logs; "
                             "pass validation_data to fit().")
        if value < self.best:
            self.best, self.best_epoch, self.wait = float(value), epoch + 1, 0
            self.best_weights = self.model.get_weights()
        else:
            self.wait = 0 if epoch + 1 <= self.warmup_epochs else self.wait + 1
            if self.wait > self.patience:
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
