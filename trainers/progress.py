"""Progress lines a log file can hold: about ten per task, with the elapsed
time and an estimate of the time left."""
import time


class ProgressLine:
    """A ``progress(done, total)`` callback that prints a line with the
    elapsed time and an estimate of the time left every tenth of the work
    (so a log file gets about ten lines).

    The time left is extrapolated from the work done since the first call,
    so a resumed task (first call with ``done > 0``, printed) is estimated
    right; a first call with ``done == 0`` only starts the clock, and the
    first line comes after a tenth of the work (the first steps, which set
    things up, would make a poor estimate)."""

    def __init__(self, what, unit, stream=None):
        self.what, self.unit, self.stream = what, unit, stream
        self.start = time.perf_counter()
        self.next_fraction = 0.0
        self.first_done = None

    def __call__(self, done, total):
        if self.first_done is None:  # the work starts now
            self.first_done, self.start = done, time.perf_counter()
            if done == 0 and total:
                self.next_fraction = 0.1
                return  # nothing to say until a tenth is done
        fraction = done / total if total else 1.0
        if fraction < self.next_fraction and done < total:
            return
        self.next_fraction = (int(fraction * 10) + 1) / 10
        elapsed = time.perf_counter() - self.start
        rate = (done - self.first_done) / elapsed if elapsed > 0 else 0.0
        left = (f", about {_duration((total - done) / rate)} left"
                if rate > 0 and 0 < fraction < 1 else "")
        print(f"{self.what}: {done}/{total} {self.unit}, {_duration(elapsed)}{left}",
              file=self.stream, flush=True)


def _duration(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
