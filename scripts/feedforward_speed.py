"""Time ``d2lstyle.feedforward.stylize`` at 256, 512 and 1024 px (longest side, 2:3 aspect).

    python scripts/feedforward_speed.py [--threads 1 2] [--reps 5]

For each torch thread count, the median over ``--reps`` calls (after one warm-up) of the wall
clock and of the process's CPU time per call. On a machine shared with other work, the wall clock
grows with the load while the CPU time hardly does: with one thread, CPU time is close to what the
call takes on an idle core. The network is the shipped architecture with random weights (seed 0):
its cost does not depend on the values of the weights. docs/feedforward.md has the results.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from d2lstyle.benchmark.harness import device_name
from d2lstyle.feedforward import TransformNet, stylize
from d2lstyle.images import offline_demo_images

SIZES = ((171, 256), (341, 512), (683, 1024))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = TransformNet().eval()
    photo = offline_demo_images()[0]
    print(f"{device_name(torch.device('cpu'))}; torch {torch.__version__}; "
          f"load average before: {os.getloadavg()[0]:.1f}")
    print("| threads | size | stylize, wall (s) | stylize, CPU time (s) |")
    print("| --- | --- | --- | --- |")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for h, w in SIZES:
            img = photo.resize((w, h))
            walls, cpus = [], []
            for _ in range(args.reps + 1):
                wall, cpu = time.perf_counter(), time.process_time()
                stylize(img, model, device="cpu")
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
            print(f"| {threads} | {h}x{w} | {statistics.median(walls[1:]):.3f} | "
                  f"{statistics.median(cpus[1:]):.3f} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
