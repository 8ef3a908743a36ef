#!/usr/bin/env bash
# Build the offline wheelhouse targets install the app from, for one target Python:
#   build/wheelhouse-TAG/      wheels for requirements/app.txt, the app's own wheel, pip,
#                              and requirements.txt (requirements/app.txt plus pins for
#                              what environment markers add on the target's Python)
#   build/wheelhouse-TAG.tar   the same, as one file for copying to hosts (one top-level
#                              directory, `wheelhouse/`)
# TAG is the target's CPython tag; the kit knows the two Debian releases it supports:
#   cp311   Debian 12 (bookworm): CPython 3.11.2, glibc 2.36   (also linked as build/wheelhouse.tar)
#   cp313   Debian 13 (trixie):   CPython 3.13.5, glibc 2.41
# TARGET_PYTHON_VERSION and TARGET_GLIBC_MINOR override them (another target's exact versions).
#
# Wheels are chosen for the TARGET's interpreter, not the controller's, so environment
# markers such as python_full_version are evaluated as the target will evaluate them, and
# only pure (py3-none-any, abi3) or manylinux wheels the target's glibc accepts are taken.
# celery_common_wheelhouse_src (build/wheelhouse-{python_tag}.tar) gives each host its own.
#
# Usage: lab/build-wheelhouse.sh [cp311|cp313]     (default cp311; uses .venv/bin/python, else python3)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

tag=${1:-cp311}
case "$tag" in
  cp311) known_version=3.11.2 known_glibc=36 ;;
  cp313) known_version=3.13.5 known_glibc=41 ;;
  *) known_version="" known_glibc="" ;;
esac
TARGET_PYTHON_VERSION=${TARGET_PYTHON_VERSION:-$known_version}
TARGET_GLIBC_MINOR=${TARGET_GLIBC_MINOR:-$known_glibc}
if [[ -z "$TARGET_PYTHON_VERSION" || -z "$TARGET_GLIBC_MINOR" ]]; then
  echo "wheelhouse: unknown target $tag: give TARGET_PYTHON_VERSION and TARGET_GLIBC_MINOR" >&2
  exit 2
fi
python=${PYTHON:-$repo/.venv/bin/python}
[[ -x "$python" ]] || python=python3

abi="cp$(cut -d. -f1,2 <<<"$TARGET_PYTHON_VERSION" | tr -d .)"
if [[ "$abi" != "$tag" ]]; then
  echo "wheelhouse: TARGET_PYTHON_VERSION $TARGET_PYTHON_VERSION is $abi, not $tag" >&2
  exit 2
fi
platforms=()
for minor in $(seq "$TARGET_GLIBC_MINOR" -1 17); do
  platforms+=(--platform "manylinux_2_${minor}_x86_64")
done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64)

out=build/wheelhouse-$tag
work=build/wheelhouse-$tag.work
rm -rf "$work"
mkdir -p "$work"

pip_version=$("$python" -m pip --version | awk '{print $2}')
download() {
  "$python" -m pip download --quiet --dest "$work" --only-binary=:all: \
    --python-version "$TARGET_PYTHON_VERSION" --implementation cp --abi "$abi" --abi abi3 --abi none \
    "${platforms[@]}" "$@" 2> >(grep -v "^WARNING: Location 'file:" >&2)
}
echo "wheelhouse: wheels for CPython $TARGET_PYTHON_VERSION ($abi, manylinux up to glibc 2.$TARGET_GLIBC_MINOR)" >&2
download --requirement requirements/app.txt "pip==$pip_version"

echo "wheelhouse: building the app's own wheel from pyproject.toml" >&2
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$work" "$repo"

# pip evaluated environment markers for the controller's Python; add what the
# target's Python needs on top (see lab/wheelhouse_closure.py).
added=()
for _ in 1 2 3 4 5; do
  mapfile -t lacking < <("$python" lab/wheelhouse_closure.py "$work" "$TARGET_PYTHON_VERSION" \
    requirements/app.txt celery-kit-sample)
  ((${#lacking[@]})) || break
  echo "wheelhouse: needed on Python $TARGET_PYTHON_VERSION only: ${lacking[*]}" >&2
  download "${lacking[@]}"
  added+=("${lacking[@]}")
done

{
  sed -e '$a\' requirements/app.txt   # (adds a final newline if missing)
  if ((${#added[@]})); then
    echo "# Added by lab/build-wheelhouse.sh: required by environment markers on Python $TARGET_PYTHON_VERSION"
    "$python" lab/wheelhouse_closure.py --pin "$work" "${added[@]}"
  fi
} >"$work/requirements.txt"

rm -rf "$out"
mv "$work" "$out"
tar -C build -cf "build/wheelhouse-$tag.tar.tmp" --transform "s,^wheelhouse-$tag,wheelhouse," "wheelhouse-$tag"
mv "build/wheelhouse-$tag.tar.tmp" "build/wheelhouse-$tag.tar"
if [[ "$tag" == cp311 ]]; then
  # The single-wheelhouse names of a Debian 12 fleet (ansible/lab-smoke.yml, molecule/shared/release.py).
  rm -rf build/wheelhouse build/wheelhouse.tar
  ln -s wheelhouse-cp311 build/wheelhouse
  ln -s wheelhouse-cp311.tar build/wheelhouse.tar
fi
echo "wheelhouse: $(find "$out" -name '*.whl' | wc -l) wheels, $(du -sh "$out" | cut -f1) in $out" >&2
