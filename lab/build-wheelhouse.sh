#!/usr/bin/env bash
# Build the offline wheelhouse targets install an app from, for one target Python.
#
# Usage: lab/build-wheelhouse.sh [--project DIR] [--requirements FILE] [--out DIR] [TAG]
#   --project DIR        the app's project: anything `pip wheel` builds (pyproject.toml, setup.py).
#                        Default: this checkout, the sample app (dist celery-kit-sample).
#   --requirements FILE  its requirements or lock file, pip's format (`-r` includes, markers and
#                        --hash allowed). Default: DIR/requirements.txt; for the sample
#                        requirements/app.txt.
#   --out DIR            where to write. Default: build/ of this checkout.
#   TAG                  the target's CPython tag (default cp311).
# writes
#   OUT/wheelhouse-TAG/      the app's own wheel, wheels for the requirements and for what the
#                            app's wheel needs besides, pip, and requirements.txt (the requirements
#                            with -r includes inlined, plus pins for what environment markers add
#                            on the target's Python)
#   OUT/wheelhouse-TAG.tar   the same, as one file for copying to hosts (one top-level
#                            directory, `wheelhouse/`)
# and prints the app's package spec (NAME==VERSION, what celery_common_packages lists) on stdout.
# Before writing anything it checks that pip installs that spec from the wheelhouse offline, as
# the roles do. Bad input stops it, naming the value, before anything is written.
#
# The kit knows the two Debian releases it supports:
#   cp311   Debian 12 (bookworm): CPython 3.11.2, glibc 2.36   (the sample's is also linked as
#                                                               build/wheelhouse.tar)
#   cp313   Debian 13 (trixie):   CPython 3.13.5, glibc 2.41
# TARGET_PYTHON_VERSION and TARGET_GLIBC_MINOR override them (another target's exact versions).
#
# Wheels are chosen for the TARGET's interpreter, not the controller's, so environment
# markers such as python_full_version are evaluated as the target will evaluate them, and
# only pure (py3-none-any, abi3) or manylinux wheels the target's glibc accepts are taken.
# celery_common_wheelhouse_src (OUT/wheelhouse-{python_tag}.tar) gives each host its own.
# Uses .venv/bin/python of this checkout (PYTHON overrides), else python3.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "wheelhouse: $*" >&2; exit 2; }

project="" requirements="" out="" tag=""
while (($#)); do
  case "$1" in
    --project|--requirements|--out)
      (($# >= 2)) && [[ -n "$2" ]] || fail "$1 needs a value"
      declare "${1#--}=$2"
      shift 2 ;;
    --project=*|--requirements=*|--out=*)
      option=${1%%=*}
      declare "${option#--}=${1#*=}"
      shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    -*) fail "unknown option $1 (see --help)" ;;
    *) [[ -z "$tag" ]] || fail "one TAG only, got $tag and $1"; tag=$1; shift ;;
  esac
done
tag=${tag:-cp311}

# Paths as the caller gave them are read from the caller's directory.
if [[ -z "$project" ]]; then
  project=$repo
  requirements=${requirements:-$repo/requirements/app.txt}
else
  [[ -d "$project" ]] || fail "--project $project: no such directory"
  project=$(cd "$project" && pwd)
  requirements=${requirements:-$project/requirements.txt}
fi
[[ -f "$project/pyproject.toml" || -f "$project/setup.py" ]] \
  || fail "--project $project: not a Python project (no pyproject.toml or setup.py)"
if [[ ! -f "$requirements" ]]; then
  [[ "$requirements" == "$project/requirements.txt" ]] \
    && fail "--project $project has no requirements.txt: give its requirements or lock file with --requirements FILE"
  fail "--requirements $requirements: no such file"
fi
requirements=$(realpath -- "$requirements")
out_given=${out:-build}
out=$(realpath -m -- "${out:-$repo/build}")
cd "$repo"

[[ "$tag" =~ ^cp3[0-9]+$ ]] || fail "TAG $tag is not a CPython tag such as cp311 or cp313"
case "$tag" in
  cp311) known_version=3.11.2 known_glibc=36 ;;
  cp313) known_version=3.13.5 known_glibc=41 ;;
  *) known_version="" known_glibc="" ;;
esac
TARGET_PYTHON_VERSION=${TARGET_PYTHON_VERSION:-$known_version}
TARGET_GLIBC_MINOR=${TARGET_GLIBC_MINOR:-$known_glibc}
if [[ -z "$TARGET_PYTHON_VERSION" || -z "$TARGET_GLIBC_MINOR" ]]; then
  fail "unknown target $tag: give TARGET_PYTHON_VERSION and TARGET_GLIBC_MINOR"
fi
python=${PYTHON:-$repo/.venv/bin/python}
[[ -x "$python" ]] || python=python3

abi="cp$(cut -d. -f1,2 <<<"$TARGET_PYTHON_VERSION" | tr -d .)"
[[ "$abi" == "$tag" ]] || fail "TARGET_PYTHON_VERSION $TARGET_PYTHON_VERSION is $abi, not $tag"
platforms=()
for minor in $(seq "$TARGET_GLIBC_MINOR" -1 17); do
  platforms+=(--platform "manylinux_2_${minor}_x86_64")
done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64)
target=(--only-binary=:all: --python-version "$TARGET_PYTHON_VERSION" --implementation cp
        --abi "$abi" --abi abi3 --abi none "${platforms[@]}")

# Everything is put together in a scratch directory; OUT is written only once it is complete.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/wheelhouse-$tag.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
work=$scratch/wheelhouse-$tag
mkdir "$work"

closure() { "$python" lab/wheelhouse_closure.py "$@"; }
closure --flatten "$requirements" >"$scratch/requirements.txt" || exit 2

echo "wheelhouse: building the app's own wheel from $project" >&2
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$scratch/app" "$project" \
  || fail "--project $project: pip wheel could not build a wheel from it (pip's message above)"
app_wheels=("$scratch"/app/*.whl)
[[ -f "${app_wheels[0]}" && ${#app_wheels[@]} == 1 ]] \
  || fail "--project $project: pip wheel built ${#app_wheels[@]} wheels, expected the app's one"
app_spec=$(closure --spec "${app_wheels[0]}")
app_name=${app_spec%%==*}
mv "${app_wheels[0]}" "$work/"

pip_version=$("$python" -m pip --version | awk '{print $2}')
download() {
  "$python" -m pip download --quiet --dest "$work" "${target[@]}" "$@" \
    2> >(grep -v "^WARNING: Location 'file:" >&2)
}
echo "wheelhouse: wheels for CPython $TARGET_PYTHON_VERSION ($abi, manylinux up to glibc 2.$TARGET_GLIBC_MINOR)" >&2
# pip on its own: a requirements file with --hash puts pip download into hash-checking mode.
download --requirement "$requirements" \
  || fail "--requirements $requirements: pip download failed for $tag (pip's message above)"
download "pip==$pip_version"

# pip evaluated environment markers for the controller's Python: add what the target's Python
# needs on top, then what the app's own wheel requires beyond the requirements file (see
# lab/wheelhouse_closure.py). add_lacking NAME WHY SEED...: download what SEED... lack for the target,
# recording it in the array NAME.
add_lacking() {
  local -n into=$1
  local why=$2
  shift 2
  for _ in 1 2 3 4 5; do
    mapfile -t lacking < <(closure "$work" "$TARGET_PYTHON_VERSION" "$@")
    ((${#lacking[@]})) || return 0
    echo "wheelhouse: $why: ${lacking[*]}" >&2
    download "${lacking[@]}"
    into+=("${lacking[@]}")
  done
}
by_markers=() by_app=()
add_lacking by_markers "needed on Python $TARGET_PYTHON_VERSION only" "$requirements"
add_lacking by_app "required by $app_spec, not in $requirements" "$requirements" "$app_name"

hashes=()
if closure --uses-hashes "$requirements"; then hashes=(--hashes); fi
{
  cat "$scratch/requirements.txt"
  if ((${#by_markers[@]})); then
    echo "# Added by lab/build-wheelhouse.sh: required by environment markers on Python $TARGET_PYTHON_VERSION"
    closure --pin "${hashes[@]}" "$work" "${by_markers[@]}"
  fi
  if ((${#by_app[@]})); then
    echo "# Added by lab/build-wheelhouse.sh: required by $app_spec on Python $TARGET_PYTHON_VERSION, not listed above"
    closure --pin "${hashes[@]}" "$work" "${by_app[@]}"
  fi
} >"$work/requirements.txt"

# What the roles run on each host (pip install --no-index --find-links WHEELHOUSE SPEC), for the
# target's Python: a wheel missing or two that conflict stop the build here, not on the hosts.
"$python" -m pip install --dry-run --quiet --disable-pip-version-check --no-index --find-links "$work" \
  "${target[@]}" --target "$scratch/install" "$app_spec" \
  || fail "$app_spec does not install from the wheelhouse for $tag (pip's message above); are the" \
          "requirements in --requirements $requirements compatible with what the app's wheel requires?"

mkdir -p "$out"
rm -rf "$out/wheelhouse-$tag.work"
mv "$work" "$out/wheelhouse-$tag.work"
rm -rf "$out/wheelhouse-$tag"
mv "$out/wheelhouse-$tag.work" "$out/wheelhouse-$tag"
tar -C "$out" -cf "$out/wheelhouse-$tag.tar.tmp" --transform "s,^wheelhouse-$tag,wheelhouse," "wheelhouse-$tag"
mv "$out/wheelhouse-$tag.tar.tmp" "$out/wheelhouse-$tag.tar"
if [[ "$tag" == cp311 && "$project" == "$repo" && "$out" == "$repo/build" ]]; then
  # The single-wheelhouse names of a Debian 12 fleet (ansible/lab-smoke.yml, molecule/shared/release.py).
  rm -rf build/wheelhouse build/wheelhouse.tar
  ln -s wheelhouse-cp311 build/wheelhouse
  ln -s wheelhouse-cp311.tar build/wheelhouse.tar
fi
echo "wheelhouse: $app_spec, $(find "$out/wheelhouse-$tag" -name '*.whl' | wc -l) wheels," \
     "$(du -sh "$out/wheelhouse-$tag" | cut -f1) in $out_given/wheelhouse-$tag" >&2
echo "$app_spec"
