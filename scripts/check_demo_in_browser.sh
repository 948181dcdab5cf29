#!/usr/bin/env bash
# Check the demo page in a real browser: start `geofm demo`, load the page in headless Chromium, upload an example
# section (and its label), press Predict, wait for the overlay and save a screenshot.
#
#   bash scripts/check_demo_in_browser.sh [--model REF] [--example NAME] [--output PNG]
#
# --model: a model to offer first (zoo:NAME, a folder or a Hub id; default: the zoo's first entry of the example's
# task, else its first entry); --example: a bundled example (default synthetic_salt; see
# geofm_hf/demo/examples/examples.json); --output: the screenshot (default docs/demo_screenshot.png, kept small).
# Chromium comes from the Debian packages when it is missing (apt-get). The browser is driven through the Chrome
# DevTools Protocol over --remote-debugging-pipe, with Python's standard library only: nothing is downloaded but
# the Debian package, and the page is served and read on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=""
EXAMPLE="synthetic_salt"
OUTPUT="docs/demo_screenshot.png"
# Seconds to wait for the server to answer, and for the prediction to show.
START_TIMEOUT=${START_TIMEOUT:-180}
PREDICT_TIMEOUT=${PREDICT_TIMEOUT:-300}
while [ $# -gt 0 ]; do
  case "$1" in
    --model) MODEL="$2"; shift 2 ;;
    --example) EXAMPLE="$2"; shift 2 ;;
    --output) OUTPUT="$2"; shift 2 ;;
    *) echo "check_demo_in_browser.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

CHROMIUM=$(command -v chromium || true)
if [ -z "$CHROMIUM" ]; then
  echo "installing chromium from the Debian packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  CHROMIUM=$(command -v chromium)
fi

WORK=$(mktemp -d -t geofm-demo-browser-XXXXXX)
SERVER=""
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

read -r SECTION LABEL TASK < <(.venv/bin/python - "$EXAMPLE" <<'PY'
import sys
from geofm_hf.demo.examples import list_examples
examples = {example.name: example for example in list_examples()}
if sys.argv[1] not in examples:
    sys.exit(f"unknown example {sys.argv[1]!r}; the examples are {', '.join(examples)}")
example = examples[sys.argv[1]]
print(example.section, example.label, example.task)
PY
)
[ -n "${SECTION:-}" ] || exit 2
if [ -z "$MODEL" ]; then
  MODEL=$(.venv/bin/python - "$TASK" <<'PY'
import sys
from geofm_hf.zoo import list_entries
entries = [entry for entry in list_entries() if entry.shipped]
if not entries:
    sys.exit("the zoo has no shipped entries: name a model with --model")
print("zoo:" + next((entry.name for entry in entries if entry.task == sys.argv[1]), entries[0].name))
PY
)
fi
PORT=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT/"
echo "serving $MODEL on $URL (log: $WORK/server.log)"
START=$(date +%s)
GRADIO_ANALYTICS_ENABLED=False .venv/bin/geofm demo --model "$MODEL" --host 127.0.0.1 --port "$PORT" \
  >"$WORK/server.log" 2>&1 &
SERVER=$!
page_up() { .venv/bin/python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$URL"; }
until page_up 2>/dev/null; do
  if ! kill -0 "$SERVER" 2>/dev/null || [ $(($(date +%s) - START)) -gt "$START_TIMEOUT" ]; then
    cat "$WORK/server.log" >&2
    echo "check_demo_in_browser.sh: the demo did not start within ${START_TIMEOUT}s" >&2
    exit 1
  fi
  sleep 1
done
echo "page up after $(($(date +%s) - START)) s"
mkdir -p "$(dirname "$OUTPUT")"

.venv/bin/python - "$CHROMIUM" "$URL" "$SECTION" "$LABEL" "$OUTPUT" "$WORK/profile" "$PREDICT_TIMEOUT" \
  "$WORK/chromium.log" <<'PY'
"""Drive headless Chromium through the DevTools protocol on --remote-debugging-pipe (fd 3 in, fd 4 out)."""
import base64
import io
import json
import subprocess
import sys
import time

from PIL import Image

chromium, url, section, label, output, profile, predict_timeout, log = sys.argv[1:9]
# A viewport tall enough for the whole page (the picture heights depend on it).
WIDTH, HEIGHT = 1200, 1700
# The screenshot is kept under this many bytes (quantised to a palette, then scaled down if needed).
MAX_BYTES = 150_000

# The shell hands Chromium our stdin as fd 3 (commands) and our stdout as fd 4 (replies).
browser = subprocess.Popen(
    [
        "bash", "-c", f'exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null 2>"{log}"', chromium, "--headless=new",
        "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
        f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}", "about:blank",
    ],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
)
next_id, buffer = 0, b""


def send(method, session=None, **params):
    """Send one command and return its result (events met on the way are dropped)."""
    global next_id, buffer
    next_id += 1
    message = {"id": next_id, "method": method, "params": params}
    if session:
        message["sessionId"] = session
    browser.stdin.write(json.dumps(message).encode() + b"\0")
    browser.stdin.flush()
    while True:
        while b"\0" not in buffer:
            chunk = browser.stdout.read1(1 << 16)
            if not chunk:
                sys.exit("chromium closed the DevTools pipe")
            buffer += chunk
        raw, buffer = buffer.split(b"\0", 1)
        reply = json.loads(raw)
        if reply.get("id") == next_id:
            if "error" in reply:
                sys.exit(f"{method}: {reply['error']}")
            return reply.get("result", {})


def evaluate(session, expression):
    result = send("Runtime.evaluate", session, expression=expression, returnByValue=True, awaitPromise=True)
    return result.get("result", {}).get("value")


def wait_for(session, expression, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if evaluate(session, expression):
            return
        time.sleep(0.25)
    sys.exit(f"timed out after {timeout} s waiting for {what}")


def upload(session, selector, path):
    document = send("DOM.getDocument", session, depth=-1, pierce=True)["root"]["nodeId"]
    node = send("DOM.querySelector", session, nodeId=document, selector=selector)["nodeId"]
    if not node:
        sys.exit(f"no {selector} in the page")
    send("DOM.setFileInputFiles", session, nodeId=node, files=[path])


try:
    target = send("Target.createTarget", url="about:blank")["targetId"]
    session = send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "DOM"):
        send(f"{domain}.enable", session)
    send("Emulation.setDeviceMetricsOverride", session, width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False)
    started = time.monotonic()
    send("Page.navigate", session, url=url)
    wait_for(session, "!!document.querySelector('#section-file input[type=file]')", 60, "the page")
    print(f"page loaded in {time.monotonic() - started:.1f} s")
    upload(session, "#section-file input[type=file]", section)
    # The page describes an upload once it has read it (and set the section selector of a volume).
    wait_for(session, "document.querySelector('#upload-info').innerText.includes('%s')" % section.rsplit("/", 1)[-1],
             60, "the section upload")
    if label != "None":
        upload(session, "#label-file input[type=file]", label)
        wait_for(session, "document.querySelector('#label-file').innerText.includes('%s')" % label.rsplit("/", 1)[-1],
                 60, "the label upload")
    clicked = time.monotonic()
    evaluate(session, "document.querySelector('#predict').click()")
    wait_for(session, "(() => { const img = document.querySelector('#overlay img');"
             " return !!img && img.complete && img.naturalWidth > 0; })()", float(predict_timeout), "the overlay")
    print(f"overlay shown {time.monotonic() - clicked:.1f} s after Predict")
    errors = evaluate(session, "Array.from(document.querySelectorAll('.toast-body')).map(e => e.innerText).join(' | ')")
    if errors:
        sys.exit(f"the page shows an error: {errors}")
    time.sleep(1.0)  # let the legend, probability picture and downloads settle
    # The page's height, captured in one go: a viewport of another height lays the page out again.
    height = min(evaluate(session, "document.documentElement.scrollHeight"), HEIGHT)
    shot = send("Page.captureScreenshot", session, format="png", clip={"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1})
    picture = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    while True:
        buffer_png = io.BytesIO()
        picture.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(buffer_png, format="PNG", optimize=True)
        if buffer_png.tell() <= MAX_BYTES or picture.width < 400:
            break
        picture = picture.resize((picture.width * 4 // 5, picture.height * 4 // 5), Image.Resampling.LANCZOS)
    with open(output, "wb") as handle:
        handle.write(buffer_png.getvalue())
    print(f"wrote {output}: {picture.width} x {picture.height}, {buffer_png.tell() // 1024} KiB")
finally:
    browser.kill()
    browser.wait()
PY
