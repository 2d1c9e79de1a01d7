#!/usr/bin/env bash
# Lints the deployment files with the linters their ecosystems use, offline:
#
#   - actionlint (with shellcheck)  .github/workflows, examples/github-actions (the calling workflow)
#   - check_external_ids.py         every external identifier (action SHAs, base images, Azure role
#                                   ids and API versions, URLs) is in .ci/external-ids.toml, the
#                                   record of what was checked against which source; then actionlint
#                                   on a copy of the workflows at the pinned tags (inputs, runtime)
#   - .ci/test_*.py (unittest)      the tests of check_external_ids.py, check_sizes.py and
#                                   check_architecture.py, and of
#                                   scripts/check-anonymous-pull.py against a fake registry
#   - zizmor --offline              .github (workflows, dependabot.yml): no finding of any severity
#   - yamllint                      .github, infra/kubernetes, examples/github-actions
#   - checkov                       infra/ (Bicep, Kubernetes, kustomize, secrets), the Dockerfile
#                                   and .github (GitHub Actions checks)
#   - hadolint                      Dockerfile
#   - shellcheck                    .ci/*.sh, scripts/*.sh
#   - kubernetes-validate           infra/kubernetes against the Kubernetes schemas (--strict), and a
#                                   broken copy that must fail (so that a validator checking nothing fails)
#   - .ci/check_manifests.py        Kubernetes manifests, Bicep, workflows, example configs: one command
#                                   line everywhere, no init containers, JWK_ROTATOR_LOG, the published image
#   - .ci/check_dockerfile.py       the Dockerfile builds without BuildKit-only syntax (az acr build)
#   - kubectl kustomize             infra/kubernetes renders (when kubectl is installed)
#
# The linters are pinned in .ci/lint-requirements.txt and installed from PyPI into a virtualenv
# that is reused while that file does not change. Exits non-zero on any finding.
#
# Environment: JWK_ROTATOR_LINT_VENV  where the virtualenv lives
#              (default ${TMPDIR:-/tmp}/jwk-rotator-lint-venv)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

requirements=.ci/lint-requirements.txt
venv="${JWK_ROTATOR_LINT_VENV:-${TMPDIR:-/tmp}/jwk-rotator-lint-venv}"
started=$SECONDS
failures=()

step() {
    printf '\n==> %s\n' "$*"
}

# Runs one linter; records a failure instead of stopping, so that one run shows every finding.
# (Inside `if`, set -e is off: the functions below return their failures explicitly.)
run() {
    local name=$1
    shift
    step "$name"
    if "$@"; then
        echo "ok: $name"
    else
        echo "FAILED: $name" >&2
        failures+=("$name")
    fi
}

# A fresh Debian or Ubuntu needs python3-venv for `python3 -m venv`.
ensure_venv_module() {
    if python3 -c 'import ensurepip, venv' 2>/dev/null; then
        return
    fi
    step "installing python3-venv"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
}

install_linters() {
    ensure_venv_module
    local stamp="$venv/.requirements.sha256" want
    want=$(sha256sum "$requirements" | cut -d' ' -f1)
    if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        echo "linters already installed in $venv"
        return
    fi
    step "installing the linters into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
    echo "$want" >"$stamp"
}

# checkov prints per-framework counts; a file it can not parse is a parsing error, not a failed
# check, and would pass silently. So read the JSON report too: every framework must have run
# checks, and none may have parse errors.
checkov_infra() {
    local report
    report=$(mktemp -d)
    # shellcheck disable=SC2064 # expand now: the directory is known here
    trap "rm -rf '$report'" RETURN
    local status=0
    checkov --directory infra --quiet --compact --skip-download \
        --output cli --output json --output-file-path "console,$report/results.json" || status=$?
    python3 - "$report/results.json" <<'EOF' || status=1
import json, sys
reports = json.load(open(sys.argv[1]))
reports = reports if isinstance(reports, list) else [reports]
seen = {}
for report in reports:
    s = report["summary"]
    seen[report["check_type"]] = s
    print(f"checkov {report['check_type']}: passed {s['passed']}, failed {s['failed']}, "
          f"skipped {s['skipped']}, parsing errors {s['parsing_errors']}")
bad = [t for t, s in seen.items() if s["parsing_errors"]]
missing = [t for t in ("bicep", "kubernetes") if seen.get(t, {}).get("passed", 0) == 0]
if bad:
    print(f"checkov could not parse files for: {', '.join(bad)}")
if missing:
    print(f"checkov ran no passing check for: {', '.join(missing)}")
sys.exit(1 if bad or missing else 0)
EOF
    return "$status"
}

# Every pin is the SHA the table records for its tag. actionlint knows the inputs and the runtime
# of popular actions by tag, not by SHA: check the workflows once more with every pin replaced
# by the major tag of its comment.
external_ids() {
    local copy
    copy=$(mktemp -d)
    # shellcheck disable=SC2064 # expand now: the directory is known here
    trap "rm -rf '$copy'" RETURN
    python3 .ci/check_external_ids.py --tag-copies "$copy" && actionlint -color=false "$copy"/*.yml
}

kustomize_renders() {
    if ! command -v kubectl >/dev/null; then
        echo "kubectl is not installed: skipped (check_manifests.py still checks every manifest)"
        return 0
    fi
    local rendered
    rendered=$(kubectl kustomize infra/kubernetes) || return 1
    printf '%s\n' "$rendered" | python3 -c '
import sys, yaml
docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
print("kustomize rendered:", ", ".join(sorted(d["kind"] + "/" + d["metadata"]["name"] for d in docs)))
sys.exit(0 if docs else 1)
'
}

# The oldest Kubernetes the manifests support: podFailurePolicy is GA in 1.31.
KUBERNETES_VERSION=1.31.0

kubernetes_schemas() {
    local manifests=() canary
    for file in infra/kubernetes/*.yaml; do
        [[ "$(basename "$file")" == kustomization.yaml ]] || manifests+=("$file")
    done
    kubernetes-validate --strict --quiet -k "$KUBERNETES_VERSION" "${manifests[@]}" || return 1
    # The validator must reject a misspelt field, or it checks nothing.
    canary=$(mktemp --suffix=.yaml)
    # shellcheck disable=SC2064 # expand now: the file is known here
    trap "rm -f '$canary'" RETURN
    sed 's/concurrencyPolicy:/concurrencyPolcy:/' infra/kubernetes/cronjob.yaml >"$canary"
    if kubernetes-validate --strict --quiet -k "$KUBERNETES_VERSION" "$canary" >/dev/null 2>&1; then
        echo "kubernetes-validate accepted a CronJob with a misspelt field: it validates nothing"
        return 1
    fi
    echo "kubernetes-validate: ${#manifests[@]} files valid against Kubernetes $KUBERNETES_VERSION (strict)"
}

install_linters
export PATH="$venv/bin:$PATH"
# zizmor, checkov: no network but the package registries; never ask for an API key.
export ZIZMOR_OFFLINE=true
unset BC_API_KEY

# actionlint finds .github/workflows itself and runs shellcheck on every run: block.
run "actionlint" actionlint -color=false
run "actionlint examples/github-actions" actionlint -color=false examples/github-actions/rotate-keys.yml
run "external identifiers" external_ids
run "tests of the .ci and release scripts" python3 -m unittest discover -s .ci -p 'test_*.py'
run "zizmor" zizmor --offline --no-progress --color never .github/
run "yamllint" yamllint --strict -c .ci/yamllint.yaml -f parsable .github infra/kubernetes examples/github-actions
run "checkov infra/" checkov_infra
run "checkov Dockerfile" checkov --file Dockerfile --framework dockerfile --quiet --compact --skip-download
run "checkov .github" checkov --directory .github --framework github_actions --quiet --compact --skip-download
run "hadolint Dockerfile" hadolint Dockerfile
run "shellcheck .ci scripts" shellcheck .ci/*.sh scripts/*.sh
run "Kubernetes schemas" kubernetes_schemas
run "Kubernetes manifests, Bicep, workflows and configs" python3 .ci/check_manifests.py .
run "Dockerfile without BuildKit" python3 .ci/check_dockerfile.py Dockerfile
run "kubectl kustomize" kustomize_renders

printf '\n'
if ((${#failures[@]})); then
    echo "lint-infra: FAILED: ${failures[*]} ($((SECONDS - started)) s)" >&2
    exit 1
fi
echo "lint-infra: all linters passed ($((SECONDS - started)) s)"
