"""What tfvamp.monitoring.PriorMonitor costs an epoch: the Caltech VAE + VampPrior (K = 500,
the paper's networks) trained by one fit in which the callback logs every second epoch
(statistics on 1,000 training images, TensorBoard written), so epochs without and with logging
alternate; each epoch is timed from its start to the end of the callbacks' epoch end.

    python bench/monitor_cost.py [--pairs=20]

Prints each pair's seconds, then the ratio of the two kinds' median epochs and of their fastest
epochs (with / without). Logging every N epochs costs (ratio - 1) / N of an epoch. The batches come
as the trainer makes them (``ImageDataset.training_epochs``, one iterator for the whole fit); a
new iterator every epoch (``ImageDataset.pipeline``, or whole ``fit(epochs=1)`` calls) makes an
epoch's first step take 0 or 0.5 s at random on 2 cores, which swamps the callback. State the CPU (lscpu) and the load beside the figure.
"""
import argparse
import os
import statistics
import tempfile

import keras

import tfvamp
from measure import EpochTimer
from tfvamp.monitoring import PriorMonitor


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=20)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    data = tfvamp.datasets.load_dataset("caltech")
    model = tfvamp.VAE(data.input_shape, likelihood="bernoulli", prior="vamp", num_components=500,
                       pseudo_inputs_init_mean=0.5, pseudo_inputs_init_std=0.02,
                       kernel_initializer="he_normal")
    model.compile(optimizer=keras.optimizers.Adam(5e-4))
    epochs = 2 + 2 * args.pairs
    train = data.training_epochs(batch_size=100, seed=0, first_epoch=0, epochs=epochs)  # the trainer's
    steps = data.steps_per_epoch(100)
    log_dir = tempfile.mkdtemp()
    monitor = PriorMonitor(data.train[:1000], every=2, log_dir=os.path.join(log_dir, "tb"))
    timer = EpochTimer()  # after the monitor, so an epoch's time includes its logging
    model.fit(train, epochs=epochs, steps_per_epoch=steps, callbacks=[monitor, timer], verbose=0)
    seconds = timer.seconds[2:]  # the first two epochs trace both kinds of epoch
    without, with_monitor = seconds[0::2], seconds[1::2]  # the monitor logs even steps
    for pair, (plain, logged) in enumerate(zip(without, with_monitor)):
        print(f"pair {pair + 1}: without {plain:.3f} s, with {logged:.3f} s")
    median_ratio = statistics.median(with_monitor) / statistics.median(without)
    print(f"median epoch: without {statistics.median(without):.3f} s, "
          f"with {statistics.median(with_monitor):.3f} s, ratio {median_ratio:.3f}")
    print(f"fastest epoch: without {min(without):.3f} s, with {min(with_monitor):.3f} s, "
          f"ratio {min(with_monitor) / min(without):.3f} (logging every epoch)")


if __name__ == "__main__":
    main()
