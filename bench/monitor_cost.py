"""What tfvamp.monitoring.PriorMonitor costs an epoch: the Caltech VAE + VampPrior (K = 500,
the paper's networks), one epoch of fit without the callback and one with it logging every
epoch (statistics on 1,000 training images, TensorBoard written), alternated in one run.

    python bench/monitor_cost.py [--pairs=5]

Prints each pair's seconds and the median ratio (with / without). Logging every N epochs
costs (ratio - 1) / N of an epoch. State the CPU (lscpu) and the load beside the figure.
"""
import argparse
import os
import statistics
import tempfile
import time

import keras

import tfvamp
from tfvamp.monitoring import PriorMonitor


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    data = tfvamp.datasets.load_dataset("caltech")
    model = tfvamp.VAE(data.input_shape, likelihood="bernoulli", prior="vamp", num_components=500,
                       pseudo_inputs_init_mean=0.5, pseudo_inputs_init_std=0.02,
                       kernel_initializer="he_normal")
    model.compile(optimizer=keras.optimizers.Adam(5e-4))
    train = data.pipeline("train", batch_size=100, shuffle=True, seed=0)
    log_dir = tempfile.mkdtemp()
    monitor = PriorMonitor(data.train[:1000], every=1, log_dir=os.path.join(log_dir, "tb"))
    model.fit(train, epochs=1, callbacks=[monitor], verbose=0)  # traces both paths once
    ratios = []
    for pair in range(args.pairs):
        seconds = []
        for callbacks in ([], [monitor]):
            start = time.perf_counter()
            model.fit(train, epochs=1, callbacks=callbacks, verbose=0)
            seconds.append(time.perf_counter() - start)
        ratios.append(seconds[1] / seconds[0])
        print(f"pair {pair + 1}: without {seconds[0]:.2f} s, with {seconds[1]:.2f} s, ratio {ratios[-1]:.3f}")
    print(f"median ratio (with / without, logging every epoch): {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
