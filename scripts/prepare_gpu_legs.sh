#!/usr/bin/env bash
# Everything a lent GPU's two prepared legs need, built on this machine from a fresh clone (README's
# install) before the device is used: docs/training.md, "A GPU leg" and "A face leg".
#
#   scripts/prepare_gpu_legs.sh [--faces N] [--heldout N] [--only gpu|face] [--data DIR] [--force]
#
# Steps, each skipped when its result is already there (a rerun continues where one stopped):
#   1. perception  the ImageNet VGG16 whose first taps the packs carry (`oldphoto data perception`)
#   2. corpus      the clean-photo corpus (`oldphoto data build`): $OLDPHOTO_CORPUS if it holds one, else
#                  DIR/corpus (export OLDPHOTO_CORPUS=DIR/corpus afterwards for training and evaluation here)
#   3. gpu pack    packs/gpu_leg (`oldphoto train pack --corpus`): the GPU leg's photo crops
#   4. faces       N synthetic training faces in DIR/faces_synth (`oldphoto data faces`, resumable)
#   5. face pack   packs/face_leg (`oldphoto train pack --faces`): the face leg's faces
#   6. held-out    N held-out faces (seed 9001) in DIR/faces_heldout, to judge an imported face model here;
#                  not carried (the device needs none of it), so last
# The photo leg's pack comes first: the GPU leg can run while the faces are still being made.  A pack is
# rebuilt when it is missing, was made from another corpus / another set of faces, or no longer fits one
# device call beside the tree (which grows with every commit); then each pack is checked against what the
# call carries: the tree's tracked (and untracked, unignored) files + that one pack <= 97 % of 64 MiB.
#
# Options:
#   --faces N     synthetic training faces to make (default 1000, docs/training.md; $PREP_FACES);
#                 the face pack takes as many as its budget holds (~700-750 at a 52 MiB tree)
#   --heldout N   held-out faces (default 100; 0 skips step 6; $PREP_HELDOUT)
#   --only gpu    steps 1-3 (the photo leg);  --only face: steps 1, 4-6 (the face leg)
#   --data DIR    where the corpus and faces go (default $OLDPHOTO_LEG_DATA, else /work/data)
#   --force       rebuild both packs even when they are up to date
# Environment: PYTHON (default python3; `oldphoto` must import, PYTHONPATH gets ./src first),
# OLDPHOTO_CORPUS (an existing corpus to use instead of building one).  Exit status: 0 when every asked
# pack is there and fits, 1 otherwise, 2 for a usage error.
set -uo pipefail

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "prepare_gpu_legs: $*" >&2; exit 2; }
count_arg() { [[ "$2" =~ ^[0-9]+$ ]] || die "$1 needs a whole number, got '$2'"; }

faces="${PREP_FACES:-1000}"
heldout="${PREP_HELDOUT:-100}"
only=""
data="${OLDPHOTO_LEG_DATA:-/work/data}"
force=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --faces|--heldout|--only|--data)
            [[ $# -ge 2 ]] || die "$1 needs a value"
            case "$1" in
                --faces) faces="$2" ;;
                --heldout) heldout="$2" ;;
                --only) only="$2" ;;
                --data) data="$2" ;;
            esac
            shift 2 ;;
        --force) force=1; shift ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
count_arg --faces "$faces"
count_arg --heldout "$heldout"
[[ "$faces" -gt 0 ]] || die "--faces must be at least 1"
case "$only" in ""|gpu|face) ;; *) die "--only takes gpu or face, got '$only'" ;; esac
[[ -n "$data" ]] || die "--data needs a folder"

cd "$(dirname "$0")/.." || exit 2
repo="$PWD"
python="${PYTHON:-python3}"
export PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
oldphoto=(nice -n 10 "$python" -m oldphoto)  # the machine is shared; an idle one loses nothing
mkdir -p "$data" || exit 1
data="$(cd "$data" && pwd)"

t_all=$SECONDS
times=()
step_start() { step_name="$1"; t_step=$SECONDS; echo; echo "[prep] == $1: $2"; }
step_end() {  # STATUS (done | skipped | FAILED)
    local s=$((SECONDS - t_step))
    times+=("$(printf '%-11s %-8s %4d s' "$step_name" "$1" "$s")")
    echo "[prep] $step_name: $1 in ${s} s"
}
fail() { step_end FAILED; echo "[prep] $*" >&2; summary; exit 1; }
summary() {
    echo
    echo "[prep] ---- times (total $((SECONDS - t_all)) s)"
    printf '[prep]   %s\n' "${times[@]}"
}

# pack_check PACK KIND SOURCE: prints "ok ..." or "rebuild: why"; KIND corpus|faces
pack_check() {
    "$python" - "$1" "$2" "$3" <<'EOF'
import json, sys
from pathlib import Path
from oldphoto.train import pack as P
pack, kind, source = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]).resolve()
try:
    m = json.loads((pack / "manifest.json").read_text(encoding="utf-8"))
except (OSError, ValueError):
    sys.exit(print("rebuild: no pack yet"))
if kind == "corpus":
    if m.get("corpus") != str(source):
        sys.exit(print(f"rebuild: made from {m.get('corpus')}"))
    if (source / "manifest.json").stat().st_mtime > (pack / "manifest.json").stat().st_mtime:
        sys.exit(print("rebuild: the corpus changed since"))
else:
    src = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
    try:
        packed = json.loads((pack / "faces" / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        sys.exit(print("rebuild: the pack holds no faces"))
    if (m.get("faces") or {}).get("source") != str(source) or packed.get("count") != src.get("count"):
        sys.exit(print(f"rebuild: {src.get('count')} faces now, the pack was made from "
                       f"{packed.get('count')} of {(m.get('faces') or {}).get('source')}"))
tree = P.tracked_bytes(Path.cwd())
mib = sum(f.stat().st_size for f in pack.rglob("*") if f.is_file()) / 2**20
if tree is not None and not P.fits_travel(tree, mib):
    sys.exit(print(f"rebuild: {mib:.1f} MiB no longer fits beside the tree's {tree / 2**20:.1f} MiB"))
print(f"ok ({mib:.1f} MiB, {m.get('counts')})")
EOF
}

# travel PACK: the size check of one device call carrying PACK; exit status 1 when it does not fit
travel() {
    "$python" - "$1" <<'EOF'
import sys
from pathlib import Path
from oldphoto.train import pack as P
pack = Path(sys.argv[1])
tree = P.tracked_bytes(Path.cwd())
if tree is None:
    sys.exit(print("[prep]   not a git checkout: cannot size the tree"))
mib = sum(f.stat().st_size for f in pack.rglob("*") if f.is_file()) / 2**20
fits = P.fits_travel(tree, mib)
room = P.TRAVEL_LIMIT_MIB * P.TRAVEL_FILL
print(f"[prep]   {pack}: {mib:.2f} MiB + tree {tree / 2**20:.2f} MiB = {tree / 2**20 + mib:.2f} MiB of "
      f"{room:.2f} ({P.TRAVEL_FILL:.0%} of {P.TRAVEL_LIMIT_MIB:.0f}): {'fits' if fits else 'DOES NOT FIT'}")
sys.exit(0 if fits else 1)
EOF
}

# build_pack NAME OUT KIND SOURCE: steps 3 and 5
build_pack() {
    local name="$1" out="$2" kind="$3" source="$4" state
    step_start "$name" "$out from $source"
    git check-ignore -q "$out" || fail "$out is not ignored by git (.gitignore: /packs/): refusing to build it"
    if [[ -n "$(git ls-files -- "$out")" ]]; then fail "$out holds tracked files: refusing"; fi
    state="rebuild: --force"
    [[ $force == 1 ]] || state="$(pack_check "$out" "$kind" "$source")" || fail "cannot read $out"
    if [[ "$state" == ok* ]]; then
        echo "[prep] $out is up to date: $state"
        travel "$out" || fail "$out does not fit one device call"
        step_end skipped
        return
    fi
    echo "[prep] $state"
    "${oldphoto[@]}" train pack "--$kind" "$source" --out "$out" || fail "oldphoto train pack failed"
    travel "$out" || fail "$out does not fit one device call"
    step_end done
}

echo "[prep] $(date -u '+%Y-%m-%dT%H:%M:%SZ') in $repo ($(git rev-parse --short HEAD 2>/dev/null)); data in $data"
"$python" -c "import oldphoto, torch; print(f'[prep] oldphoto {oldphoto.__version__}, torch {torch.__version__}')" \
    || { echo "prepare_gpu_legs: '$python' cannot import oldphoto and torch: install first (README)" >&2; exit 1; }

# 1. perception: the packs carry the VGG16's first taps (the legs' lambda_vgg > 0)
step_start perception "the ImageNet VGG16"
vgg="$("$python" -c "from oldphoto.metrics.perception import perception_dir; print(perception_dir() / 'vgg16_imagenet.safetensors')")"
if [[ -f "$vgg" ]]; then
    echo "[prep] $vgg is there"
    step_end skipped
else
    "${oldphoto[@]}" data perception || fail "oldphoto data perception failed"
    step_end done
fi

if [[ "$only" != face ]]; then
    # 2. corpus
    step_start corpus "the clean-photo corpus"
    if [[ -n "${OLDPHOTO_CORPUS:-}" && -f "$OLDPHOTO_CORPUS/manifest.json" ]]; then
        corpus="$OLDPHOTO_CORPUS"
        echo "[prep] using \$OLDPHOTO_CORPUS=$corpus"
        step_end skipped
    else
        corpus="$data/corpus"
        [[ -n "${OLDPHOTO_CORPUS:-}" ]] && echo "[prep] \$OLDPHOTO_CORPUS=$OLDPHOTO_CORPUS holds no corpus"
        if [[ -f "$corpus/manifest.json" ]]; then
            echo "[prep] $corpus is there"
            step_end skipped
        else  # (reuses the photos an interrupted build already wrote)
            "${oldphoto[@]}" data build --out "$corpus" || fail "oldphoto data build failed"
            step_end done
        fi
        echo "[prep] export OLDPHOTO_CORPUS=$corpus   (training and evaluation here read it)"
    fi
    corpus="$(cd "$corpus" && pwd)"
    # 3. the GPU leg's pack
    build_pack gpu_pack packs/gpu_leg corpus "$corpus"
fi

if [[ "$only" != gpu ]]; then
    # 4. training faces (resumable: a rerun makes only the missing ones)
    step_start faces "$faces synthetic training faces (seed 0; ~1.5-1.8 s each on 2 cores)"
    "${oldphoto[@]}" data faces --synthetic "$faces" --seed 0 --out "$data/faces_synth" --no-progress \
        || fail "oldphoto data faces failed"
    step_end done
    # 5. the face leg's pack
    build_pack face_pack packs/face_leg faces "$data/faces_synth"
    # 6. held-out faces (for bench_faces.py after the import; not carried)
    if [[ "$heldout" -gt 0 ]]; then
        step_start heldout "$heldout held-out faces (seed 9001)"
        "${oldphoto[@]}" data faces --synthetic "$heldout" --seed 9001 --out "$data/faces_heldout" \
            --no-progress || fail "oldphoto data faces (held-out) failed"
        step_end done
    fi
fi

summary
echo "[prep] then, with the device tool (one leg per session: 15 minutes of device time):"
[[ "$only" != face ]] && echo '[prep]   run(command="scripts/gpu_leg.sh", carry=["packs/gpu_leg"], timeout_s=600)'
[[ "$only" != gpu ]] && echo '[prep]   run(command="GPU_LEG_PACK=packs/face_leg scripts/gpu_leg.sh", carry=["packs/face_leg"], timeout_s=600)'
exit 0
