"""Where a VAE training step's time goes, on the CPU or a GPU: steps per second under each setting.

The pipeline's VAE is small (16 channels, 48 samples, 8 latents), so on a GPU a step of 512
waveforms may be bound by kernel launches and Python rather than arithmetic. This script
trains the default ``SpikeVAE`` on random waveforms (the cost of a step does not depend on
the values) through the pipeline's own ``train_model`` and prints, per setting, the time to
the first epoch's end (CUDA start-up included), the seconds per step after it, and the
seconds per waveform. Each setting runs in a fresh process, because
``CUBLAS_WORKSPACE_CONFIG`` is read once per process.

    python benchmarks/bench_vae_steps.py --device cuda            # every setting below
    python benchmarks/bench_vae_steps.py --device cpu --only default
    python benchmarks/bench_vae_steps.py --device cuda --trace 20 # torch.profiler table of 20 steps

Settings: ``default`` (the pipeline's: deterministic algorithms, warn only; on CUDA, steps
replayed as a captured CUDA graph), ``eager`` (``cuda_graphs = false``), ``eager_nondeterministic``,
``eager_amp`` (bfloat16 autocast, which keeps steps eager), ``batch_4096`` (eight times fewer,
larger steps; a different training, shown for the cost per waveform only). On the H200 before
the graphs (2026-12-04): 6.8 ms per eager step with autocast, 5.4 ms without, 7.6 ms with
CUBLAS_WORKSPACE_CONFIG set; 303 kernels per step, 1.2 ms of them on the device.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time

SETTINGS = {
    "default": {},
    "eager": {"set": {"cuda_graphs": False}},
    "eager_nondeterministic": {"set": {"cuda_graphs": False}, "nondeterministic": True},
    "eager_amp": {"set": {"amp": True}},
    "batch_4096": {"set": {"batch_size": 4096}},
}

def one(device: str, setting: str, n: int, epochs: int, trace: int) -> dict:
    """Train in this process under ``setting``; return the timings."""
    import numpy as np
    import torch

    from spikevae.features.vae import train as vtrain
    from spikevae.features.vae.config import VAEConfig
    from spikevae.features.vae.model import SpikeVAE

    spec = SETTINGS[setting]
    if spec.get("nondeterministic"):
        vtrain.deterministic = contextlib.nullcontext
    cfg = VAEConfig(epochs=epochs, patience=epochs + 1, **spec.get("set", {}))
    dev = torch.device(device)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 48)).astype(np.float32)
    n_val = int(n * cfg.val_fraction)
    bank = rng.standard_normal((4096, 48)).astype(np.float32)
    norm = vtrain.Normalisation(mean=np.zeros(48, np.float32), scale=1.0)
    t0 = time.perf_counter()
    model = SpikeVAE(cfg, 48).to(dev)
    marks = []

    def on_epoch_end(state):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        marks.append((time.perf_counter(), state.step))

    vtrain.train_model(model, x[n_val:], x[:n_val], bank, norm, cfg, dev, on_epoch_end=on_epoch_end)
    (t1, s1), (t2, s2) = marks[0], marks[-1]
    steps = s2 - s1
    out = {"setting": setting, "device": device, "batch": cfg.batch_size, "first_epoch_s": t1 - t0,
           "steps": steps, "s_per_step": (t2 - t1) / max(steps, 1),
           "us_per_waveform": 1e6 * (t2 - t1) / max(steps * cfg.batch_size, 1)}
    xt = torch.from_numpy(x[:50000]).to(dev)
    t3 = time.perf_counter()
    vtrain.embed(model, x, cfg.embed_batch_size, dev)
    out["embed_per_s"] = n / (time.perf_counter() - t3)
    if trace:
        from torch.profiler import ProfilerActivity, profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        gen = torch.Generator(device=dev)
        gen.manual_seed(0)
        corrupt = vtrain.make_corruption(cfg.corruption, cfg, 1.0, torch.from_numpy(bank).to(dev))
        with vtrain.deterministic(), profile(activities=acts) as prof:
            for i in range(trace):
                xb = xt[i * cfg.batch_size:(i + 1) * cfg.batch_size]
                vtrain.train_step(model, opt, xb, corrupt(xb, gen), i, gen, cfg.amp)
            if dev.type == "cuda":
                torch.cuda.synchronize()
        ka = prof.key_averages()
        sort = "self_cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total"
        print(ka.table(sort_by="self_cpu_time_total", row_limit=18))
        if dev.type == "cuda":
            print(ka.table(sort_by=sort, row_limit=12))
            kernels = sum(e.count for e in ka if e.device_type.name == "CUDA")
            out["kernels_per_step"] = kernels / trace
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--only", nargs="*", choices=sorted(SETTINGS), help="settings to run (default: all)")
    p.add_argument("--n", type=int, default=50000, help="waveforms (the pipeline's max_train_spikes)")
    p.add_argument("--epochs", type=int, default=4, help="epochs per setting (the first is start-up)")
    p.add_argument("--trace", type=int, default=0, help="also profile this many steps of the default setting")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print("RESULT " + json.dumps(one(a.device, a.child, a.n, a.epochs, a.trace)), flush=True)
        return
    results = []
    for setting in a.only or list(SETTINGS):
        env = {**os.environ, **SETTINGS[setting].get("env", {})}
        cmd = [sys.executable, __file__, "--child", setting, "--device", a.device, "--n", str(a.n),
               "--epochs", str(a.epochs), "--trace", str(a.trace if setting == "default" else 0)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        lines = proc.stdout.splitlines()
        print("\n".join(x for x in lines if not x.startswith("RESULT ")))
        res = [json.loads(x[7:]) for x in lines if x.startswith("RESULT ")]
        if proc.returncode or not res:
            print(f"{setting}: failed (rc {proc.returncode})\n{proc.stderr[-2000:]}")
            continue
        r = res[0]
        results.append(r)
        warns = sum("warn" in x.lower() for x in proc.stderr.splitlines())
        print(f"{setting:17s} batch {r['batch']:5d}  first epoch {r['first_epoch_s']:6.2f} s  "
              f"{1e3 * r['s_per_step']:7.2f} ms/step ({r['steps']} steps)  {r['us_per_waveform']:6.2f} us/waveform  "
              f"embed {r['embed_per_s'] / 1e6:6.2f} M/s  stderr warning lines {warns}"
              + (f"  kernels/step {r['kernels_per_step']:.0f}" if "kernels_per_step" in r else ""), flush=True)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
