#!/usr/bin/env bash
# gpu_check.sh -- nlprec on one NVIDIA GPU (sized for an H200 lent through the device tool), in two parts,
# plus the preparation that runs on the CPU machine first. Run from anywhere; it works in the repository root.
#
#   bash benchmarks/gpu_check.sh prepare       # HERE (CPU machine): fill .gpu-carry/ (corpora + wheels)
#   bash benchmarks/gpu_check.sh correctness   # GPU, under 5 minutes: tests, every family, artifacts, speed
#   bash benchmarks/gpu_check.sh quality       # GPU, about 7 minutes: BERT MLM accuracy, Transformer BLEU
#   DEVICE=cpu QUICK=1 bash benchmarks/gpu_check.sh correctness|quality   # smoke run of the same steps, tiny
#
# correctness (BUDGET_S=285, every step under its own `timeout`, phases with deadlines):
#   families  in parallel lanes on the GPU: `python -m pytest -m gpu tests/gpu -rs` (exit 5 = no tests);
#             every family 20-40 s through the CLI with --device cuda: word2vec (skip-gram/negative,
#             CBOW/hierarchical, torch backend), fastText, GloVe, mf, autorec, neumf (fp32 and bf16), TextCNN,
#             BiRNN, Transformer (+ run, beam, attention, evaluate on the GPU), GRU-attention, BERT pretraining
#             (+ fill, evaluate), BERT classifier; a tiny CPU word2vec run compiles the numba kernels once.
#   bench     a CPU-only process (CUDA_VISIBLE_DEVICES=) loads every artifact and queries it, reads its
#             loss log (the loss must fall) and torch.loads its weights with no map_location; beside it, on
#             the GPU: BERT against transformers' BertForPreTraining at bench_bert's sizes on the same batches
#             (32 and 256 x 128, bf16 and fp32), the Transformer against bench_translation's Marian peer on
#             the same token batches (6,000 and 16,000 tokens), steps interleaved.
#   speed     word2vec 1 epoch of half the IMDb train reviews (12,500, about 3M tokens): torch backend on the
#             GPU (4,096-word chunks, then 65,536) vs the numba kernel on every core; NeuMF on ml-100k,
#             2 epochs, GPU vs CPU (every core): epoch seconds.
# quality (BUDGET_S=410), the two runs side by side on the GPU (the GPU is shared; each one's tokens/s with it):
#   `nlprec bert pretrain` BERT_MINUTES (4) on bench_bert's corpus (IMDb train reviews + WikiText-2 valid,
#   written in the `sentences` format) with --batch-size BERT_BATCH (256) --lr BERT_LR (1e-3), then
#   `nlprec bert evaluate` on bench_bert's held-out set (WikiText-2 test + its 2,000 IMDb test reviews,
#   seed 12345 masks): bar MLM accuracy >= 0.35. `nlprec translate train --arch transformer` TR_MINUTES (2)
#   on bench_translation's seed-1 split of fra.txt (2,000 test pairs) with --max-tokens TR_MAX_TOKENS
#   (6000), then `nlprec translate evaluate` beam 5 on the test pairs: bar BLEU about 40.
#
# Output (in $OUT, default /tmp/gpu_check_out): <part>.json (per-step rc, seconds, limit, the measured
# figures, checks, bars, environment, settings) and <part>_logs.tgz (every step's log, status.tsv, the
# small JSON files the runs wrote). A line per step is printed as it ends, the table at the end.
#
# The GPU machine has a copy of the working tree but not ../shared, and not every package: the corpora
# come from $NLPREC_CORPORA (default .gpu-carry/corpora, git-ignored; gzipped copies expanded into the
# scratch folder and checked against their sha256), the wheels it lacks from .gpu-carry/wheels (installed
# with pip --no-index into a folder put first on PYTHONPATH, only those whose distribution is missing or
# too old). Nothing from .gpu-carry/ is ever committed (DESIGN.md: the corpora stay out of the project).
#
# Env: DEVICE (cuda), QUICK (0), OUT, W (scratch, default /tmp/gpu_check_work/<part>), BUDGET_S, PYTHON
# (python3), PARALLEL (lanes at once: 1 with 8 cores or more, else one after the other), PHASES
# (correctness: "families bench speed"; a rerun of a failed phase names only it), NLPREC_CORPORA; quality: BERT_MINUTES,
# BERT_BATCH, BERT_LR, BERT_VOCAB, BERT_EXTRA (more `bert pretrain` flags, e.g. "--warmup-fraction 0.05"),
# TR_MINUTES, TR_MAX_TOKENS, TR_LR (empty: the CLI's default 1e-3), TR_EXTRA (more `translate train` flags);
# prepare: GPU_PYTHON_VERSIONS (3.12, the device image's Python: .library/device/KINDS.md).
set -uo pipefail

PART=${1:-}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 2
PY=${PYTHON:-python3}
HELPER=$REPO/benchmarks/gpu_check_helper.py
CARRY=$REPO/.gpu-carry

usage() { sed -n '2,8p' "$0"; exit 2; }

# ================================ prepare (CPU machine) ================================
prepare() {
  local src=${NLPREC_CORPORA:-$REPO/../shared/corpora} versions=${GPU_PYTHON_VERSIONS:-3.12} v plat=()
  echo "== corpora from $src into $CARRY/corpora"
  "$PY" "$HELPER" prepare-corpora "$src" "$CARRY/corpora" || exit 1
  echo "== wheels for Python $versions, manylinux x86_64, into $CARRY/wheels"
  rm -rf "$CARRY/wheels" "$CARRY/wheels.all"
  mkdir -p "$CARRY/wheels" "$CARRY/wheels.all"
  for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    plat+=(--platform "$p")
  done
  for v in $versions; do  # resolved with their needs, so that pins agree (pydantic == its pydantic-core)
    "$PY" -m pip download -q --only-binary=:all: --python-version "$v" --implementation cp "${plat[@]}" \
      -d "$CARRY/wheels.all" faiss-cpu fastapi uvicorn 2>&1 | grep -v "is ignored: it is neither a file" ; \
      [ "${PIPESTATUS[0]}" = 0 ] || exit 1
  done
  "$PY" - "$CARRY/wheels.all" "$CARRY/wheels" <<'EOF' || exit 1
import shutil, sys
from pathlib import Path
sys.path.insert(0, "benchmarks")
from gpu_check_helper import WHEEL_KEEP
src, dest = Path(sys.argv[1]), Path(sys.argv[2])
for wheel in sorted(src.glob("*.whl")):
    name = wheel.name.split("-")[0].lower()
    if name in WHEEL_KEEP:
        shutil.copyfile(wheel, dest / wheel.name)
    else:
        print(f"  not carried (the GPU image has it): {wheel.name}")
EOF
  rm -rf "$CARRY/wheels.all"
  ls -l "$CARRY/wheels" | awk 'NR > 1 {printf "  %-80s %8.2f MB\n", $9, $5 / 1e6}'
  echo "== .gpu-carry: $(du -sb "$CARRY/corpora" | awk '{printf "%.1f MB", $1 / 1e6}') corpora," \
       "$(du -sb "$CARRY/wheels" | awk '{printf "%.1f MB", $1 / 1e6}') wheels," \
       "$(du -sb "$CARRY" | awk '{printf "%.1f MB", $1 / 1e6}') in all (with the working tree, under the 64 MiB a run may carry)"
}

case $PART in
  prepare) prepare; exit 0 ;;
  correctness|quality) ;;
  *) usage ;;
esac

# ================================ common set-up (GPU machine) ================================
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}
OUT=${OUT:-/tmp/gpu_check_out}
W=${W:-/tmp/gpu_check_work/$PART}
if [ "$PART" = correctness ]; then DEFAULT_BUDGET=285; else DEFAULT_BUDGET=410; fi
[ "$QUICK" = 1 ] && DEFAULT_BUDGET=480
BUDGET_S=${BUDGET_S:-$DEFAULT_BUDGET}
START=$SECONDS
END=$((START + BUDGET_S))
LOGS=$W/logs
NCPU=$(nproc 2>/dev/null || echo 2)
PARALLEL=${PARALLEL:-$(( NCPU >= 8 ? 1 : 0 ))}
case $(cd "$W" 2>/dev/null && pwd -P) in  # W is emptied: never a folder that holds anything else
  /|"$REPO"|"$HOME"|/tmp) echo "W=$W: choose a scratch folder of its own"; exit 2 ;;
esac
rm -rf "$W"
mkdir -p "$OUT" "$LOGS" "$W/bin" "$W/shim" "$W/emb" "$W/rec" "$W/tr" "$W/bert" "$W/cls" "$W/speed" "$W/q"
: >"$W/status.tsv"
QFLAG=(); [ "$QUICK" = 1 ] && QFLAG=(--quick)
export PYTHONUNBUFFERED=1 NUMBA_CACHE_DIR=$W/numba-cache HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
  TOKENIZERS_PARALLELISM=false MPLBACKEND=Agg

ms() {  # wall clock in milliseconds
  if [ -n "${EPOCHREALTIME:-}" ]; then local t=${EPOCHREALTIME/[.,]/}; echo $((10#$t / 1000)); else date +%s%3N; fi
}

# step NAME LIMIT_S CMD...: run CMD under `timeout`, capped by the phase's deadline (skipped when under 8 s
# are left), its output in $LOGS/NAME.log; one line per step on stdout and in status.tsv.
step() {
  local name=$1 limit=$2 left t0 rc dt note figures
  shift 2
  left=$(( ${PHASE_END:-$END} - SECONDS ))
  if (( left < 8 )); then
    printf '%s\tskip\t0\t0\tskipped: %ss left in this phase\n' "$name" "$left" >>"$W/status.tsv"
    printf '[%4ds] %-24s SKIPPED (%ss left in this phase)\n' $((SECONDS - START)) "$name" "$left"
    return 99
  fi
  (( limit > left )) && limit=$left
  t0=$(ms)
  timeout -k 5 "$limit" "$@" >"$LOGS/$name.log" 2>&1
  rc=$?
  dt=$(( $(ms) - t0 ))
  dt="$((dt / 1000)).$(( (dt % 1000) / 100 ))"
  (( rc == 124 || rc == 137 )) && note="TIMED OUT after ${limit}s; " || note=""
  figures=""
  [[ $name == check_* || $name == bench_* ]] || figures=$(grep -o -E '"(rmse|mae|hr@10|ndcg@10|bleu|chrf|mlm_accuracy|nsp_accuracy|sentences_per_s)": [0-9.eE+-]+' \
            "$LOGS/$name.log" | head -n 8 | tr '\n' ' ')
  if [ -n "$figures" ]; then note+=$figures; else
    note+=$(grep -v -E '^[][{}, ]*$' "$LOGS/$name.log" | tail -n 1 | tr '\t\r' '  ' | cut -c1-150); fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" "$dt" "$limit" "$note" >>"$W/status.tsv"
  printf '[%4ds] %-24s rc=%-3s %6ss  %s\n' $((SECONDS - START)) "$name" "$rc" "$dt" "$note"
  return $rc
}

# "${JSON_TO[@]}" FILE CMD...: CMD's stdout into FILE (for --json commands run by `step`)
JSON_TO=(bash -c 'set -o pipefail; "$@" | tee "$0"')

finish() {  # the part's JSON and the logs archive; always reached
  local extra
  timeout 60 "$PY" "$HELPER" summarize "$PART" "$W" "$OUT" 2>&1 | tee "$LOGS/summary.log"
  extra=$(cd "$W" && find emb rec tr bert cls speed q -maxdepth 3 -type f \
            \( -name 'metrics.json*' -o -name 'config.json' -o -name '*.meta.json' \) -size -2M 2>/dev/null)
  # shellcheck disable=SC2086
  tar -czf "$OUT/${PART}_logs.tgz" -C "$W" logs status.tsv $(cd "$W" && ls ./*.json 2>/dev/null) $extra 2>/dev/null
  echo "done: $PART in $((SECONDS - START)) s (budget $BUDGET_S s); $OUT/$PART.json, $OUT/${PART}_logs.tgz"
}

echo "== nlprec gpu check: $PART, device $DEVICE, quick $QUICK, budget ${BUDGET_S}s, scratch $W, out $OUT"

# --- wheels the machine lacks, this checkout on the path (nlprec, nlprec_cli = cli/, nlprec_corpora = corpora/)
SITE=$W/site
if compgen -G "$CARRY/wheels/*.whl" >/dev/null; then
  step wheels 90 "$PY" "$HELPER" install-wheels "$CARRY/wheels" "$SITE"
fi
ln -sfn "$REPO/cli" "$W/shim/nlprec_cli"
ln -sfn "$REPO/corpora" "$W/shim/nlprec_corpora"
export PYTHONPATH=$SITE:$REPO:$W/shim${PYTHONPATH:+:$PYTHONPATH}
printf '#!/usr/bin/env bash\nexec %q -m nlprec_cli.main "$@"\n' "$(command -v "$PY")" >"$W/bin/nlprec"
chmod +x "$W/bin/nlprec"
export PATH=$W/bin:$PATH

# --- corpora: the carried copy expanded (or a plain folder linked), then everything reads $NLPREC_CORPORA
step corpora 60 "$PY" "$HELPER" expand-corpora "${NLPREC_CORPORA:-$CARRY/corpora}" "$W/corpora" || {
  echo "no corpora: run 'bash benchmarks/gpu_check.sh prepare' on the CPU machine and carry .gpu-carry"; finish; exit 2; }
export NLPREC_CORPORA=$W/corpora

step env 60 "$PY" "$HELPER" env "$W/env.json"
command -v nvidia-smi >/dev/null && nvidia-smi -L >>"$LOGS/env.log" 2>&1
if [ "$DEVICE" = cuda ] && ! grep -q '"cuda_available": true' "$W/env.json" 2>/dev/null; then
  echo "torch sees no CUDA device: stopping (see $LOGS/env.log)"; finish; exit 2
fi

export PART DEVICE QUICK BUDGET_S NCPU PARALLEL BERT_MINUTES BERT_BATCH BERT_LR BERT_VOCAB BERT_EXTRA TR_MINUTES \
  TR_MAX_TOKENS TR_LR TR_EXTRA PHASES
settings() {  # what this run was asked to do, for the summary
  "$PY" - "$W/settings.json" "$@" <<'EOF'
import json, os, sys
keys = ["PART", "DEVICE", "QUICK", "BUDGET_S", "NCPU", "PHASES"] + sys.argv[2:]
json.dump({k.lower(): os.environ.get(k) for k in keys} | {"quick": os.environ.get("QUICK") == "1"},
          open(sys.argv[1], "w"), indent=2)
EOF
}

# ================================ correctness ================================
# Lanes: each a sequence of steps; in parallel on a machine with 8 cores or more (PARALLEL=1), one after
# the other on a small one (the CPU smoke run), where parallel processes only fight over two cores.
lanes() {
  local lane
  if [ "$PARALLEL" = 1 ]; then
    for lane in "$@"; do "$lane" & done
    wait
  else
    for lane in "$@"; do "$lane"; done
  fi
}

lane_tests() {  # the gpu-marked tests; exit 5 = no test collected (reported as such, not as a failure)
  if [ ! -d "$REPO/tests/gpu" ]; then
    printf 'pytest_gpu\tabsent\t0\t0\ttests/gpu does not exist in this checkout\n' >>"$W/status.tsv"
    echo "[    ] pytest_gpu               tests/gpu does not exist in this checkout"
    return
  fi
  local X=()
  [ "$PARALLEL" = 1 ] && "$PY" -c "import xdist" 2>/dev/null && X+=(-n 4)
  "$PY" -c "import pytest_timeout" 2>/dev/null && X+=(--timeout 100)
  step pytest_gpu $((A_LEN - 5)) "$PY" -m pytest -m gpu "$REPO/tests/gpu" -rs -p no:cacheprovider -q "${X[@]}"
}

lane_vectors() {  # skip-gram on the GPU, then the classifiers that use its vectors
  step w2v_sg 50 nlprec embed train data/ptb.txt --out emb/sg.npz --arch skipgram --epochs "$EP" "${EMB[@]}"
  local E=()
  [ -f emb/sg.npz ] && E=(--embeddings emb/sg.npz)
  step cls_textcnn 50 nlprec classify train "${RT[@]}" --model textcnn "${E[@]}" --epochs "$CLS_EP" --out cls/textcnn "${D[@]}" -q
  step cls_birnn 50 nlprec classify train "${RT[@]}" --model birnn --max-len 100 --epochs "$CLS_EP" --out cls/birnn "${D[@]}" -q
}

lane_embeddings() {  # numba compiled once on the CPU (cached for the speed phase), the other embeddings on the GPU
  step numba_warm 90 nlprec embed train data/ptb_tiny.txt --out speed/warm.npz --epochs 1 --min-count 1 \
    --device cpu --backend numba -q
  step w2v_cbow_hs 50 nlprec embed train data/ptb.txt --out emb/cbow_hs.bin --arch cbow --objective hierarchical \
    --epochs "$EP" "${EMB[@]}"
  step fasttext 60 nlprec embed train data/ptb.txt --out emb/ft.npz --arch fasttext --buckets 200000 --epochs 1 "${EMB[@]}"
  step glove 50 nlprec embed train data/ptb.txt --out emb/glove.vec --arch glove --epochs "$GLOVE_EP" "${EMB[@]}"
}

lane_recommenders() {
  step rec_mf 40 nlprec rec train data/u.data --model mf --epochs "$MF_EP" --out rec/mf "${R[@]}"
  step rec_autorec 40 nlprec rec train data/u.data --model autorec --epochs "$AUTOREC_EP" --out rec/autorec "${R[@]}"
  step rec_neumf 50 nlprec rec train data/u.data --model neumf --epochs "$NEUMF_EP" --out rec/neumf "${R[@]}"
  step rec_neumf_bf16 50 nlprec rec train data/u.data --model neumf --epochs "$NEUMF_EP" --precision bf16 \
    --out rec/neumf_bf16 "${R[@]}"
}

lane_translation() {
  local T=(--valid-size 500 --target-lang fr "${TV[@]}" "${D[@]}" --seed 1 -q)
  step tr_transformer 90 nlprec translate train data/fra_train.tsv --out tr/tfm --arch transformer --max-minutes "$TRM" "${T[@]}"
  step tr_run_beam 30 nlprec translate run tr/tfm "Go away." "I am very busy today." --beam 5 --nbest 2 "${D[@]}"
  step tr_attention 30 nlprec translate run tr/tfm "Go away." --show-attention "${D[@]}"
  step tr_eval 45 nlprec translate evaluate tr/tfm data/fra_test.tsv --beam 5 "${D[@]}" --json
  step tr_gru 70 nlprec translate train data/fra_train.tsv --out tr/gru --arch gru-attention --max-minutes "$GRUM" "${T[@]}"
}

lane_bert() {
  step bert_pretrain 80 nlprec bert pretrain data/wiki_valid.tokens --format wikitext --out bert/mlm "${BV[@]}" \
    --max-minutes "$BM" "${D[@]}" --seed 1 -q
  step bert_fill 30 nlprec bert fill bert/mlm "the [MASK] of the city ." --k 5 --json
  step bert_evaluate 45 nlprec bert evaluate bert/mlm data/wiki_test_small.tokens --format wikitext --json
  step cls_bert 70 nlprec classify train "${RT[@]}" --model bert --init bert/mlm --max-len 64 --epochs 1 \
    --max-minutes "$CBM" --out cls/bert "${D[@]}" -q
}

lane_artifacts() {  # a process that sees no GPU
  step check_artifacts 60 env CUDA_VISIBLE_DEVICES= "$PY" "$HELPER" check-artifacts "$W" "$W/checks.json" --threads 4
}

lane_side_by_side() {  # BERT and the Transformer against their transformers peers, on the same GPU and batches
  local left=$(( (PHASE_END - SECONDS) / 2 - 3 ))
  step bench_bert 60 "$PY" "$HELPER" bench-bert "$W/bench_bert.json" "${D[@]}" --budget-s "$left" "${QFLAG[@]}"
  left=$(( PHASE_END - SECONDS - 3 ))
  step bench_translation 60 "$PY" "$HELPER" bench-translation "$W" "$W/bench_translation.json" "${D[@]}" \
    --budget-s "$left" "${QFLAG[@]}"
}

correctness() {
  D=(--device "$DEVICE") EP=2 CLS_EP=3 GLOVE_EP=10 MF_EP=10 AUTOREC_EP=30 NEUMF_EP=2 SPEED_EP=2
  TRM=0.5 GRUM=0.4 BM=0.4 CBM=0.3
  TV=() BV=(--vocab-size 4000) A_LEN=130 B_LEN=50
  if [ "$QUICK" = 1 ]; then
    EP=1 CLS_EP=1 GLOVE_EP=2 MF_EP=2 AUTOREC_EP=3 NEUMF_EP=1 SPEED_EP=1 TRM=0.05 GRUM=0.05 BM=0.05 CBM=0.05
    TV=(--vocab-size 1000) BV=(--vocab-size 1000) A_LEN=300 B_LEN=150
  fi
  EMB=(--device "$DEVICE" --backend torch --seed 1 -q)
  RT=(--class-file pos=data/rt.pos --class-file neg=data/rt.neg --encoding latin-1)
  R=(--device "$DEVICE" --seed 0 --quiet --json)
  PHASES=${PHASES:-families bench speed}
  settings PARALLEL
  cd "$W" || return
  local early=()
  if [[ " $PHASES " == *" families "* ]]; then
    export PHASE_END=$((SECONDS + A_LEN))
    echo "== families: the gpu tests and every model family on $DEVICE (until +$((PHASE_END - START))s)"
    if [ "$PARALLEL" = 1 ]; then lane_tests & else early=(lane_tests); fi  # the tests need no data: first on the GPU
  fi
  step data 90 "$PY" "$HELPER" make-data "$NLPREC_CORPORA" "$W" "${QFLAG[@]}"
  if [[ " $PHASES " == *" families "* ]]; then
    lanes "${early[@]}" lane_vectors lane_embeddings lane_recommenders lane_translation lane_bert
    wait
  fi
  if [[ " $PHASES " == *" bench "* ]]; then
    export PHASE_END=$(( SECONDS + B_LEN < END - 40 ? SECONDS + B_LEN : END - 40 ))
    echo "== bench: CPU-only artifact check beside the GPU side-by-side timings (until +$((PHASE_END - START))s)"
    lanes lane_artifacts lane_side_by_side
  fi
  if [[ " $PHASES " == *" speed "* ]]; then
    export PHASE_END=$((END - 8))
    echo "== speed: word2vec GPU vs numba on $NCPU cores, NeuMF epoch GPU vs CPU (until +$((PHASE_END - START))s)"
    step w2v_speed_gpu 40 nlprec embed train data/imdb_tokens.txt --out speed/w2v_gpu.npz --epochs 1 "${EMB[@]}"
    step w2v_speed_numba 30 nlprec embed train data/imdb_tokens.txt --out speed/w2v_numba.npz --epochs 1 \
      --device cpu --backend numba --threads "$NCPU" --seed 1 -q
    step neumf_speed_gpu 30 nlprec rec train data/u.data --model neumf --epochs "$SPEED_EP" --out speed/neumf_gpu "${R[@]}"
    step neumf_speed_cpu 45 nlprec rec train data/u.data --model neumf --epochs "$SPEED_EP" --out speed/neumf_cpu \
      --device cpu --threads "$NCPU" --seed 0 --quiet --json
    step w2v_speed_gpu_chunk64k 30 nlprec embed train data/imdb_tokens.txt --out speed/w2v_gpu64k.npz --epochs 1 \
      --chunk-words 65536 "${EMB[@]}"
    timeout 30 "$PY" "$HELPER" speed-summary "$W" "$W/speed.json" >"$LOGS/speed_summary.log" 2>&1
  fi
}

# ================================ quality ================================
quality() {
  BERT_MINUTES=${BERT_MINUTES:-4} BERT_BATCH=${BERT_BATCH:-256} BERT_LR=${BERT_LR:-1e-3} BERT_VOCAB=${BERT_VOCAB:-8000}
  TR_MINUTES=${TR_MINUTES:-2} TR_MAX_TOKENS=${TR_MAX_TOKENS:-6000} TR_LR=${TR_LR:-}
  if [ "$QUICK" = 1 ]; then
    BERT_MINUTES=${QUICK_BERT_MINUTES:-0.25} BERT_BATCH=32 BERT_VOCAB=1000 TR_MINUTES=${QUICK_TR_MINUTES:-0.2} TR_MAX_TOKENS=2000
  fi
  settings BERT_MINUTES BERT_BATCH BERT_LR BERT_VOCAB BERT_EXTRA TR_MINUTES TR_MAX_TOKENS TR_LR TR_EXTRA
  LR=(); [ -n "$TR_LR" ] && LR=(--lr "$TR_LR")
  bert_limit=$("$PY" -c "print(int($BERT_MINUTES * 60 + 140))")
  tr_limit=$("$PY" -c "print(int($TR_MINUTES * 60 + 120))")
  cd "$W" || return
  export PHASE_END=$END
  echo "== BERT ${BERT_MINUTES} min (batch $BERT_BATCH, lr $BERT_LR) beside the Transformer ${TR_MINUTES} min" \
       "(max-tokens $TR_MAX_TOKENS), both on $DEVICE"
  lanes lane_quality_translation lane_quality_bert  # the translation data is ready in seconds: its lane starts first
}

lane_quality_bert() {
  step bert_data 120 "$PY" "$HELPER" quality-data "$NLPREC_CORPORA" "$W" --what bert "${QFLAG[@]}" || return
  step bert_pretrain "$bert_limit" nlprec bert pretrain data/bert_train.txt --format sentences --out q/bert \
    --vocab-size "$BERT_VOCAB" --batch-size "$BERT_BATCH" --lr "$BERT_LR" --max-minutes "$BERT_MINUTES" \
    --device "$DEVICE" --seed 1 -q ${BERT_EXTRA:-}
  step bert_evaluate 120 "${JSON_TO[@]}" "$W/bert_eval.json" nlprec bert evaluate q/bert data/bert_heldout.txt \
    --format sentences --json
}

lane_quality_translation() {
  step translation_data 60 "$PY" "$HELPER" quality-data "$NLPREC_CORPORA" "$W" --what translation "${QFLAG[@]}" || return
  step translate_train "$tr_limit" nlprec translate train data/fra_train.tsv --out q/tr --arch transformer \
    --max-minutes "$TR_MINUTES" --max-tokens "$TR_MAX_TOKENS" "${LR[@]}" --target-lang fr --device "$DEVICE" --seed 1 -q \
    ${TR_EXTRA:-}
  step translate_evaluate 120 "${JSON_TO[@]}" "$W/translate_eval.json" nlprec translate evaluate q/tr data/fra_test.tsv \
    --beam 5 --device "$DEVICE" --json
}

if [ "$PART" = correctness ]; then correctness; else quality; fi
cd "$REPO" || true
finish
