"""Shared helpers of the PyTorch reference benchmarks (bench/reference/*.py).

A reference script builds the same inputs as its TypeScript benchmark, registers one callable per case id and
hands them to `run_cases`. Two modes:

* standalone (`python3 bench/reference/engine.py --threads 2`): every case is timed once, in order, and one
  JSON object is printed on stdout;
* `--serve` (how bench/util.ts's ReferenceProcess runs it): the script prints {"ready": ...} and then answers
  one JSON line per command read from stdin -- {"cmd": "run", "id", "warmup", "repeat", "settleMs"} times a
  case, {"cmd": "quit"} prints the final object (checksums etc.) and exits. The TypeScript driver alternates
  blocks of ragtune and PyTorch repetitions, so both sides see the same background load.

The timing loop mirrors bench/util.ts's timeIt: `warmup` untimed calls, then `repeat` calls each timed on its
own, with a device synchronisation before starting and before stopping the clock. Progress goes to stderr.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

import torch


def base_parser(description):
    """The options every benchmark shares (the TypeScript side passes them explicitly)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16", "float64"])
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="intra-op threads; 0 keeps torch's default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--serve", action="store_true", help="answer timing commands on stdin (see the docstring)")
    return p


def setup(args):
    """Applies the thread count (the TypeScript side passes ragtune's getNumThreads())."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)


def dtype_of(name):
    return getattr(torch, name)


def synchronizer(device):
    if str(device).startswith("cuda"):
        return torch.cuda.synchronize
    return lambda: None


def summarize(samples_ms, pressure=None, cpu_ms=None, minor_faults=None):
    out = {
        "medianMs": statistics.median(samples_ms),
        "minMs": min(samples_ms),
        "meanMs": statistics.fmean(samples_ms),
        "samplesMs": samples_ms,
    }
    if pressure is not None:
        out["pressure"] = pressure
    if cpu_ms is not None:
        out["cpuMs"] = cpu_ms
    if minor_faults is not None:
        out["minorFaults"] = minor_faults
    return out


def cpu_time_ms():
    """Process CPU time, user + system, all threads (bench/util.ts uses process.cpuUsage)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return (r.ru_utime + r.ru_stime) * 1e3


def cpu_stall_ms():
    """Total CPU stall time of the system in ms (Linux PSI "some"), or None (bench/util.ts: cpuStallMs)."""
    try:
        with open("/proc/pressure/cpu") as f:
            for line in f:
                if line.startswith("some "):
                    return int(line.rsplit("total=", 1)[1]) / 1e3
    except (OSError, ValueError, IndexError):
        pass
    return None


def time_it(fn, warmup, repeat, sync):
    """Median/min/mean of `repeat` individually timed calls after `warmup` untimed ones (milliseconds)."""
    for _ in range(warmup):
        fn()
    sync()
    samples = []
    stall0 = cpu_stall_ms()
    cpu0 = cpu_time_ms()
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    wall0 = time.perf_counter()
    for _ in range(repeat):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        samples.append((time.perf_counter() - t0) * 1e3)
    wall1 = time.perf_counter()
    cpu = cpu_time_ms() - cpu0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
    stall1 = cpu_stall_ms()
    pressure = None
    if stall0 is not None and stall1 is not None:
        pressure = {"stallMs": stall1 - stall0, "wallMs": (wall1 - wall0) * 1e3}
    return summarize(samples, pressure, cpu, faults)


def loaded_blas():
    """Basenames of the BLAS/LAPACK libraries mapped into this process (Linux only)."""
    try:
        with open("/proc/self/maps") as f:
            names = {line.split()[-1].rsplit("/", 1)[-1] for line in f if "/" in line}
    except OSError:
        return []
    keys = ("blas", "mkl", "lapack", "accelerate")
    return sorted(n for n in names if any(k in n.lower() for k in keys))


def context(device):
    """Machine and library facts printed next to the numbers."""
    info = {
        "python": sys.executable,
        "pythonVersion": platform.python_version(),
        "torchVersion": torch.__version__,
        "threads": torch.get_num_threads(),
        "parallelBackend": next(
            (
                line.split(":", 1)[1].strip()
                for line in torch.__config__.parallel_info().splitlines()
                if line.startswith("ATen parallel backend")
            ),
            "unknown",
        ),
        "blas": loaded_blas(),
        "device": str(device),
        "fusedAttention": hasattr(torch.nn.functional, "scaled_dot_product_attention"),
        "pid": os.getpid(),
    }
    if str(device).startswith("cuda"):
        info["deviceName"] = torch.cuda.get_device_name(torch.device(device))
        info["cudaVersion"] = torch.version.cuda
    return info


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def emit(obj):
    """The one line of stdout the TypeScript side parses."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def lcg_lengths(seed, n, low, high):
    """n integers in [low, high] from a 32-bit LCG; bench/util.ts's lcgLengths gives the same sequence."""
    state = seed & 0xFFFFFFFF
    out = []
    for _ in range(n):
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        out.append(low + (state >> 8) % (high - low + 1))
    return out


def run_cases(args, device, cases, final):
    """Times `cases` ({id: fn}) standalone or as a server (module docstring); `final()` gives the closing extras."""
    sync = synchronizer(device)
    if not args.serve:
        results = {}
        for case_id, fn in cases.items():
            log(f"[torch] {case_id}")
            results[case_id] = time_it(fn, args.warmup, args.repeat, sync)
        emit({"context": context(device), "options": vars(args), "results": results, **final()})
        return
    emit({"ready": True, "context": context(device), "cases": list(cases)})
    while True:
        line = sys.stdin.readline()
        if not line:
            return  # the driver went away
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            emit({"done": True, **final()})
            return
        if cmd["cmd"] != "run" or cmd.get("id") not in cases:
            emit({"error": f"bad command {line.strip()}"})
            continue
        time.sleep(cmd.get("settleMs", 0) / 1e3)
        emit({"id": cmd["id"], **time_it(cases[cmd["id"]], cmd["warmup"], cmd["repeat"], sync)})
