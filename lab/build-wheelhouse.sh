#!/usr/bin/env bash
# Build the offline wheelhouse targets install the app from:
#   build/wheelhouse/      wheels for requirements/app.txt, the app's own wheel, pip,
#                          and requirements.txt (requirements/app.txt plus pins for
#                          what environment markers add on the target's Python)
#   build/wheelhouse.tar   the same, as one file for copying to hosts
#
# Wheels are chosen for the TARGET's interpreter (Debian 12: CPython 3.11.2 on
# glibc 2.36), not the controller's, so environment markers such as
# python_full_version are evaluated as the target will evaluate them.
#
# Usage: lab/build-wheelhouse.sh            (uses .venv/bin/python, else python3)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

TARGET_PYTHON_VERSION=${TARGET_PYTHON_VERSION:-3.11.2}
TARGET_GLIBC_MINOR=${TARGET_GLIBC_MINOR:-36}   # glibc 2.36 on Debian 12
python=${PYTHON:-$repo/.venv/bin/python}
[[ -x "$python" ]] || python=python3

abi="cp$(cut -d. -f1,2 <<<"$TARGET_PYTHON_VERSION" | tr -d .)"
platforms=()
for minor in $(seq "$TARGET_GLIBC_MINOR" -1 17); do
  platforms+=(--platform "manylinux_2_${minor}_x86_64")
done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64)

out=build/wheelhouse
work=build/wheelhouse.work
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
tar -C build -cf build/wheelhouse.tar wheelhouse
echo "wheelhouse: $(find "$out" -name '*.whl' | wc -l) wheels, $(du -sh "$out" | cut -f1) in $out" >&2
