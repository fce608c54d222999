#!/usr/bin/env bash
# Build the wheel, install it in a fresh virtual env and use it from outside the repository:
# `littlevision --version`, `littlevision demo` (templates: report.html), the service's web page
# (static files), and the licence text. Catches files that exist in the checkout but are not
# shipped. Usage: scripts/check_wheel.sh [PYTHON]   (make check-wheel)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${1:-python3}"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== build the wheel"
"$python" -m venv "$work/build-env"
"$work/build-env/bin/python" -m pip install -q --upgrade pip
"$work/build-env/bin/python" -m pip wheel -q --no-deps -w "$work/dist" "$repo"
wheel="$(ls "$work"/dist/littlevision-*.whl)"
echo "$wheel"
unzip -l "$wheel" | grep -q "licenses/LICENSE" || { echo "the wheel ships no LICENSE"; exit 1; }
for f in littlevision/explain/templates/report.html.j2 littlevision/serving/static/index.html; do
  unzip -l "$wheel" | grep -q "$f" || { echo "the wheel lacks $f"; exit 1; }
done

echo "== install it in a fresh virtual env"
"$python" -m venv "$work/env"
"$work/env/bin/python" -m pip install -q --upgrade pip
"$work/env/bin/python" -m pip install -q "$wheel"

echo "== run it outside the repository"
mkdir "$work/elsewhere"
cd "$work/elsewhere"
export LITTLEVISION_CACHE="$work/cache"
"$work/env/bin/littlevision" --version
"$work/env/bin/littlevision" demo --quiet
test -s runs/demo/report.html && test -s runs/demo/model.onnx && test -s runs/demo/README.md
grep -q "Apache License" "$("$work/env/bin/python" -c 'import importlib.metadata as m; d = m.distribution("littlevision"); print(d.locate_file([f for f in d.files if f.name == "LICENSE"][0]))')"

port="$("$work/env/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$work/env/bin/littlevision" serve runs/demo --host 127.0.0.1 --port "$port" >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 60); do
  if "$work/env/bin/python" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/v2/health/ready', timeout=1)" 2>/dev/null; then break; fi
  sleep 1
done
"$work/env/bin/python" - "$port" <<'EOF'
import sys
import urllib.request

base = f"http://127.0.0.1:{sys.argv[1]}"
page = urllib.request.urlopen(base + "/", timeout=10).read().decode()
assert "<html" in page.lower(), page[:200]
for asset in ("/static/app.js", "/static/style.css"):
    assert urllib.request.urlopen(base + asset, timeout=10).status == 200, asset
print("web page and static files served")
EOF
echo "OK: the wheel installs and runs outside the repository"
