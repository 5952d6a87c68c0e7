#!/usr/bin/env bash
# One GPU lease for the shipped model (issue 24): the candidates, trained by our CLI side by side on one GPU, the
# one with the best *validation* accuracy (never the test set) brought back whole with its snapshots, the others
# without. Run on the device machine from the repo root, after the mosaics of scripts/lease_data.py arrived:
#
#     bash scripts/lease_train.sh SRC_DIR [SRC_DIR ...]      # writes to $OUT (the lease's return folder)
#
# Each candidate is the shipped recipe (scripts/make_default_model.py's RECIPE) with more epochs, which a GPU
# affords; LIMIT_S bounds each run so the lease keeps time to bring the files back. The same on a CPU first, on
# scripts/lease_data.py's mosaics of a small tree:  DEVICE=cpu VAL_IMAGES=6 EPOCHS=1 bash scripts/lease_train.sh DIR
set -u
OUT=${OUT:-/tmp/lease-out}
mkdir -p "$OUT" /tmp/runs
python3 -m scripts.lease_data unpack --src "$@" --out /tmp/cifar || exit 1
python3 -c "from core.data import DataConfig, load_dataset as l; d = l(DataConfig(data_dir='/tmp/cifar', download=False)); \
print('data:', len(d.train), 'training and', len(d.test), 'test images')" || exit 1  # decodes once, cached

common=(python3 -m core train --preset gpu --val-images "${VAL_IMAGES:-2000}" --outlier-exposure 0.5 --jitter 0.4
        --tta none --device "${DEVICE:-cuda}" --data-dir /tmp/cifar --no-download --no-progress)
candidate() {
  local name=$1; shift
  OMP_NUM_THREADS=4 timeout "${LIMIT_S:-380}" "${common[@]}" --run-dir "/tmp/runs/$name" "$@" > "/tmp/runs/$name.out" 2>&1
  echo "$name: exit $?"
}
candidate e50-zoom --epochs "${EPOCHS:-50}" --zoom 0.8 &
candidate e50 --epochs "${EPOCHS:-50}" &
candidate e80-zoom --epochs "${EPOCHS:-80}" --zoom 0.8 &
wait
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null

python3 - "$OUT" <<'EOF'
import json, pathlib, subprocess, sys
out, runs = pathlib.Path(sys.argv[1]), pathlib.Path("/tmp/runs")
done = {}
for run in sorted(p for p in runs.iterdir() if p.is_dir()):
    print(f"--- {run.name}\n" + (runs / f"{run.name}.out").read_text()[-3000:])
    if (run / "metrics.json").is_file():
        ends = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
        ends = [e for e in ends if "val_accuracy" in e] or [{}]
        done[run.name] = ends[-1].get("val_accuracy", 0)
print("validation accuracy of the finished runs:", done)
best = max(done, key=done.get) if done else None
for name in done:
    keep = ["model.pth", "config.json", "metrics.json", "events.jsonl", "train.log"]
    keep += ["snapshots.pt"] if name == best else []
    keep = [k for k in keep if (runs / name / k).is_file()]
    subprocess.run(["tar", "-cf", f"/tmp/{name}.tar", "-C", str(runs), *[f"{name}/{k}" for k in keep]], check=True)
    subprocess.run(["split", "-b", "15M", "-d", f"/tmp/{name}.tar", str(out / f"{name}.tar.")], check=True)
print("best on validation:", best)
EOF
