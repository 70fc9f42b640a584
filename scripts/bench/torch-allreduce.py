#!/usr/bin/env python3
"""PyTorch's own allreduce on Gloo over loopback, for experiments/data-parallel.ts to print beside
the project's: the same float32 sizes, buckets, repetitions and world size; median seconds as JSON.

    python3 scripts/bench/torch-allreduce.py --sizes 769162,7978856 --reps 10 --world 2
"""
import argparse
import json
import os
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

BUCKET_FLOATS = 4 << 20  # as src/distributed/data-parallel.ts


def worker(rank, args, port, out):
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=args.world)
    results = {}
    for n in args.sizes:
        buckets = [torch.ones(min(BUCKET_FLOATS, n - i)) for i in range(0, n, BUCKET_FLOATS)]
        times = []
        for rep in range(args.warmup + args.reps):
            dist.barrier()
            t0 = time.perf_counter()
            works = [dist.all_reduce(b, async_op=True) for b in buckets]
            for w in works:
                w.wait()
            if rep >= args.warmup:
                times.append(time.perf_counter() - t0)
        results[str(n)] = statistics.median(times)
    if rank == 0:
        out.put(results)
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], required=True)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--world", type=int, default=2)
    p.add_argument("--port", type=int, default=29731)
    args = p.parse_args()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, args, args.port, out)) for r in range(args.world)]
    for proc in procs:
        proc.start()
    results = out.get()
    for proc in procs:
        proc.join()
    print(json.dumps({"torch": torch.__version__, "seconds": results}))


if __name__ == "__main__":
    main()
