#!/usr/bin/env bash
# Every GPU figure of the README in one run, on a machine with a CUDA GPU (CI has none):
#   1. the CUDA tests (pytest -m gpu): band-pass, VAE training and embedding, a whole run, against the CPU;
#   2. the whole pipeline, PCA and VAE features, with run.device=cuda (VAE training and embedding on the
#      GPU; clustering on the CPU cores) and preprocess.device=$FILTER_DEVICE (the band-pass; default cpu,
#      the faster choice with many cores; the README's table was measured with FILTER_DEVICE=cuda):
#      bench_throughput.py, 96 electrodes;
#   3. VAE training and embedding alone on the GPU, profiled (bench_vae_speed.py, 100k waveforms);
#   4. the cost of one VAE training step under each setting (bench_vae_steps.py: deterministic algorithms,
#      CUBLAS_WORKSPACE_CONFIG, autocast, batch size), with a torch.profiler table of 20 steps;
#   5. the detect stage with the band-pass on the CPU and on the GPU, with an exact comparison of the
#      spikes (bench_detect.py --save / --compare), and the per-chunk kernels of both.
#
# On the H200 machine (2026-12-04) the 10-minute recording took 117-149 s to simulate (one core), the CUDA
# tests 39 s, each whole-pipeline run 40-80 s and each detect step 10-20 s: about 7 minutes in all, more than
# a 420-s limit left for the VAE profile. MINUTES=5 saves about 3 minutes: the second session ran the CUDA tests
# and bench_vae_steps.py (110 s), then the 5-min pipeline (sim 68 s) and the VAE profile, in 296 s.
#
#   bash benchmarks/bench_gpu.sh OUT_DIR [MINUTES] [N_JOBS]      # defaults: 10 minutes, every CPU core
#   PARTS="steps vae" bash benchmarks/bench_gpu.sh OUT     # only some parts (default: tests pipeline vae steps detect)
#   DEVICE=cpu bash benchmarks/bench_gpu.sh /tmp/g 0.5 2          # the same steps on the CPU (a dry run)
set -u
out=${1:?usage: bench_gpu.sh OUT_DIR [MINUTES] [N_JOBS]}
minutes=${2:-10}
jobs=${3:-$(nproc)}
dev=${DEVICE:-cuda}
filt=${FILTER_DEVICE:-cpu}
sims=${SIMS:-/tmp/spikevae_gpu_sims}
parts=" ${PARTS:-tests pipeline vae steps detect} "
want() { [[ "$parts" == *" $1 "* ]]; }
mkdir -p "$out" "$sims"
export PYTHONUNBUFFERED=1
step() { echo; echo "== $* ($(date +%T))"; }

step "machine"
python3 -c "import torch, os; print('torch', torch.__version__, '| cuda', torch.version.cuda, '|',
torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU', '|', os.cpu_count(), 'CPU cores')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null

if want tests; then
step "CUDA tests"
python3 -m pytest -m gpu -q -p no:cacheprovider ${TESTS:-tests/test_cuda.py tests/test_preprocess.py tests/test_vae.py} 2>&1 | tail -8
fi

if want pipeline; then
step "whole pipeline, run.device=$dev, preprocess.device=$filt, n_jobs $jobs"
python3 benchmarks/bench_throughput.py --minutes "$minutes" --vae --n-jobs "$jobs" --data-dir "$sims" \
    --set "run.device=$dev" --set "preprocess.device=$filt" --set "cluster.n_jobs=$jobs" \
    --json "$out/throughput_$dev.json"
fi

if want vae; then
step "VAE training and embedding on $dev, profiled"
python3 benchmarks/bench_vae_speed.py --n 100000 --cache "$sims/vae_speed" --set "device=$dev" \
    --profile "$out/vae_profile_$dev" --json "$out/vae_speed_$dev.json" 2>&1 | grep -v "VAE epoch"
fi

if want steps; then
step "one VAE training step on $dev under each setting"
python3 benchmarks/bench_vae_steps.py --device "$dev" --trace 20 --json "$out/vae_steps_$dev.json"
fi

want detect || { step "done"; exit 0; }
rec=$(ls -d "$sims"/sim_96el_*min_seed0 | head -1)/recording.ns5
for d in cpu "$dev"; do
    step "detect stage, band-pass on $d, n_jobs $jobs"
    if [ "$d" = cpu ]; then cmp="--save $sims/detect_cpu.npz"; else cmp="--compare $sims/detect_cpu.npz"; fi
    python3 benchmarks/bench_detect.py "$rec" --repeats 1 --n-jobs "$jobs" --set "preprocess.device=$d" $cmp
    step "detect kernels, band-pass on $d (serial, 60 chunks)"
    python3 benchmarks/bench_detect.py "$rec" --kernels --kernel-chunks 60 --repeats 0 --set "preprocess.device=$d"
done
step "done"
