#!/usr/bin/env python3
"""Offline checks of the deployment files that no installable linter covers.

- Every Kubernetes manifest in infra/kubernetes parses, has apiVersion, kind and a valid
  metadata.name, and the workloads carry the security settings jwk-rotator relies on (non-root,
  read-only root filesystem, no privilege escalation, all capabilities dropped, resource
  limits, Azure workload identity, the config mounted from the ConfigMap at /config, a writable
  publish directory).
- The CronJob runs one container, `rotate --exit-on warning`, with concurrencyPolicy Forbid and
  a podFailurePolicy that fails the Job at once on the findings' exit codes 11, 12, 13; the
  worker Deployment runs `worker` with probes on /healthz port 9464 and the Prometheus scrape
  annotations.
- Every example jwk-rotator.toml (ConfigMap, GitHub workflow config, Bicep parameter files)
  parses as TOML and points its publish dir at the writable mount.
- The Container Apps Job in main.bicep has no init containers (they get no managed identity
  token in consumption-only and dedicated workload profile environments) and one main
  container; the identity gets AcrPull on a given registry before the job is created.
- The log variable in every manifest and in the Bicep is JWK_ROTATOR_LOG, the one src/main.rs
  reads first; RUST_LOG appears nowhere.
- Every image reference (manifests, kustomization, Bicep default and parameter files) is the
  published image at the package version of Cargo.toml.
- The Container Apps Job, the CronJob and the rotate workflow run the same command line:
  `jwk-rotator --config FILE rotate --exit-on warning`.
- The rotate workflow only runs when called (workflow_call: no schedule in this repository,
  which has no credentials), builds nothing, and runs a pinned release whose checksum and
  attestation it checks; its example caller has the schedule and calls this version; the release workflow builds linux/amd64 and
  linux/arm64 images tagged X.Y.Z, X.Y and latest with SBOM, provenance and an attestation, and
  binaries for every platform, packaged and verified by scripts/release.sh (checksums,
  completions, the man page, the static-link check), which .ci/run also runs.

The workflow checks are in manifest_workflows.py, what both share in manifest_common.py.

Usage: python3 .ci/check_manifests.py [REPO_ROOT]. Exits 1 with one line per problem.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import yaml

from manifest_common import PUBLISHED_IMAGE, ROTATE, Checker, check_rotator_config, dig
from manifest_workflows import check_release, check_workflow

NAMESPACE = "jwk-rotator"
# The log variable the binary reads first (src/main.rs); RUST_LOG is only its fallback.
LOG_VAR = "JWK_ROTATOR_LOG"
FINDING_EXIT_CODES = [11, 12, 13]
ACR_PULL_ROLE_ID = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
CONFIG_PATH = "/config/jwk-rotator.toml"
PUBLISH_DIR = "/work/jwks"
METRICS_PORT = 9464
COMMANDS = {"rotate", "plan", "status", "jwks", "export-key", "promote", "retire", "worker"}
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
KNOWN_KINDS = {
    ("v1", "Namespace"),
    ("v1", "ServiceAccount"),
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("batch/v1", "CronJob"),
    ("apps/v1", "Deployment"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    # restart-rbac.yaml: in the namespaces of the workloads that restarts patch
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
}
RBAC_KINDS = {"Role", "RoleBinding"}


def load_manifests(c: Checker, directory: Path) -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(directory.glob("*.y*ml")):
        if path.name == "kustomization.yaml":
            continue
        try:
            loaded = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError as err:
            c.expect(False, str(path), f"is not valid YAML: {err}")
            continue
        for index, doc in enumerate(loaded):
            if doc is None:
                continue
            where = f"{path.name}[{index}]"
            if c.expect(isinstance(doc, dict), where, "a manifest must be a mapping"):
                docs.append((where, doc))
    c.expect(bool(docs), str(directory), "holds no manifests")
    return docs


def check_restart_rbac(c: Checker, where: str, doc: dict) -> None:
    """The restart Role may only patch named Deployments and StatefulSets; its binding names only
    the job's service account."""
    c.expect(DNS1123.match(dig(doc, "metadata", "namespace") or "") is not None, where,
             "metadata.namespace must name the workloads' namespace")
    if doc.get("kind") == "Role":
        for rule in doc.get("rules") or [{}]:
            c.expect(rule.get("apiGroups") == ["apps"], where, "a restart rule is for apiGroups [apps]")
            c.expect(set(rule.get("resources") or ["?"]) <= {"deployments", "statefulsets"}, where,
                     "a restart rule is for deployments or statefulsets")
            c.expect(rule.get("verbs") == ["patch"], where, "a restart rule allows patch only")
            c.expect(bool(rule.get("resourceNames")), where, "a restart rule names its workloads (resourceNames)")
        return
    subjects = doc.get("subjects") or [{}]
    c.expect(all(s.get("kind") == "ServiceAccount" and s.get("name") == "jwk-rotator"
                 and s.get("namespace") == NAMESPACE for s in subjects), where,
             f"the restart binding is for the service account jwk-rotator in {NAMESPACE} only")


def check_metadata(c: Checker, where: str, doc: dict) -> None:
    api, kind = doc.get("apiVersion"), doc.get("kind")
    c.expect(isinstance(api, str) and bool(api), where, "apiVersion is missing")
    c.expect(isinstance(kind, str) and bool(kind), where, "kind is missing")
    c.expect((api, kind) in KNOWN_KINDS, where, f"unexpected apiVersion/kind {api}/{kind}")
    name = dig(doc, "metadata", "name")
    c.expect(isinstance(name, str) and DNS1123.match(name or "") is not None and len(name) <= 63,
             where, f"metadata.name {name!r} is not a DNS-1123 label")
    if kind in RBAC_KINDS:
        check_restart_rbac(c, where, doc)
    elif kind != "Namespace":
        c.expect(dig(doc, "metadata", "namespace") == NAMESPACE, where,
                 f"metadata.namespace must be {NAMESPACE}")
    for field in ("labels", "annotations"):
        values = dig(doc, "metadata", field, default={}) or {}
        for key, value in values.items():
            c.expect(isinstance(value, str), where, f"metadata.{field}.{key} must be a string (quote it)")


def check_container(c: Checker, where: str, container: dict, volumes: dict) -> list[str]:
    name = container.get("name", "?")
    at = f"{where} container {name}"
    image = container.get("image", "")
    c.expect(image == c.image, at, f"image {image!r} must be the published image {c.image}")
    env = {e.get("name"): e.get("value") for e in container.get("env") or []}
    c.expect(LOG_VAR in env, at, f"env must set {LOG_VAR}, the log variable jwk-rotator reads")
    c.expect("RUST_LOG" not in env, at, f"env sets RUST_LOG: use {LOG_VAR}, which jwk-rotator reads first")
    sc = container.get("securityContext") or {}
    c.expect(sc.get("readOnlyRootFilesystem") is True, at, "readOnlyRootFilesystem must be true")
    c.expect(sc.get("allowPrivilegeEscalation") is False, at, "allowPrivilegeEscalation must be false")
    c.expect(sc.get("runAsNonRoot") is True, at, "runAsNonRoot must be true")
    c.expect(sc.get("privileged") in (None, False), at, "must not be privileged")
    c.expect("ALL" in (dig(sc, "capabilities", "drop", default=[]) or []), at, "must drop ALL capabilities")
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            c.expect(dig(container, "resources", kind, resource) is not None, at,
                     f"resources.{kind}.{resource} must be set")
    mounts = {m.get("mountPath"): m for m in container.get("volumeMounts", [])}
    config = mounts.get("/config")
    if c.expect(config is not None, at, "must mount the config at /config"):
        c.expect(config.get("readOnly") is True, at, "/config must be mounted readOnly")
        c.expect("configMap" in volumes.get(config.get("name"), {}), at, "/config must come from a ConfigMap")
    publish = mounts.get(PUBLISH_DIR)
    if c.expect(publish is not None, at, f"must mount a writable publish dir at {PUBLISH_DIR}"):
        c.expect(not publish.get("readOnly", False), at, f"{PUBLISH_DIR} must be writable")
        c.expect("emptyDir" in volumes.get(publish.get("name"), {}), at, f"{PUBLISH_DIR} must be an emptyDir")
    args = container.get("args") or []
    c.expect(container.get("command") in (None, ["jwk-rotator"]), at, "command must be the image entrypoint jwk-rotator")
    c.expect(args[:2] == ["--config", CONFIG_PATH], at, f"args must start with --config {CONFIG_PATH}")
    c.expect(len(args) >= 3 and args[2] in COMMANDS, at, f"args {args} name no jwk-rotator command")
    return args[2:]


def check_pod(c: Checker, where: str, template: dict) -> list[list[str]]:
    """Checks a pod template; returns the command (args after --config FILE) of each container in run order."""
    labels = dig(template, "metadata", "labels", default={}) or {}
    c.expect(labels.get("azure.workload.identity/use") == "true", where,
             'pod label azure.workload.identity/use must be "true"')
    spec = template.get("spec") or {}
    c.expect(spec.get("serviceAccountName") == "jwk-rotator", where, "serviceAccountName must be jwk-rotator")
    c.expect(spec.get("automountServiceAccountToken") is False, where, "automountServiceAccountToken must be false")
    psc = spec.get("securityContext") or {}
    c.expect(psc.get("runAsNonRoot") is True, where, "pod securityContext.runAsNonRoot must be true")
    c.expect(isinstance(psc.get("runAsUser"), int) and psc["runAsUser"] > 0, where, "pod must set a non-zero runAsUser")
    c.expect(dig(psc, "seccompProfile", "type") == "RuntimeDefault", where, "pod seccompProfile must be RuntimeDefault")
    volumes = {v.get("name"): v for v in spec.get("volumes", [])}
    for volume in volumes.values():
        c.expect("hostPath" not in volume, where, f"volume {volume.get('name')} must not be a hostPath")
    c.expect(not spec.get("initContainers"), where,
             "must have no initContainers: one container runs the one command (rotate --exit-on)")
    containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
    c.expect(bool(spec.get("containers")), where, "has no containers")
    return [check_container(c, where, container, volumes) for container in containers]


def port_number(container: dict, port) -> int | None:
    if isinstance(port, int):
        return port
    for entry in container.get("ports", []):
        if entry.get("name") == port:
            return entry.get("containerPort")
    return None


def check_cronjob(c: Checker, where: str, doc: dict) -> list[list[str]]:
    spec = doc.get("spec") or {}
    c.expect(spec.get("concurrencyPolicy") == "Forbid", where, "concurrencyPolicy must be Forbid")
    c.expect(isinstance(spec.get("schedule"), str) and len(spec["schedule"].split()) == 5, where,
             "schedule must be a five-field cron expression")
    job = dig(spec, "jobTemplate", "spec", default={}) or {}
    c.expect(isinstance(job.get("activeDeadlineSeconds"), int), where, "the Job needs activeDeadlineSeconds")
    c.expect(dig(job, "template", "spec", "restartPolicy") in ("Never", "OnFailure"), where,
             "restartPolicy must be Never or OnFailure")
    commands = check_pod(c, where, job.get("template") or {})
    c.expect(commands == [ROTATE], where, f"must run one container: {' '.join(ROTATE)} (runs {commands})")
    rules = dig(job, "podFailurePolicy", "rules", default=[]) or []
    fail_job = [r for r in rules if r.get("action") == "FailJob"]
    c.expect(any(dig(r, "onExitCodes", "containerName") == "rotate"
                 and dig(r, "onExitCodes", "operator") == "In"
                 and sorted(dig(r, "onExitCodes", "values", default=[]) or []) == FINDING_EXIT_CODES
                 for r in fail_job), where,
             f"podFailurePolicy must FailJob on container rotate's exit codes {FINDING_EXIT_CODES} (findings; exit 1 is retried)")
    return commands


def check_deployment(c: Checker, where: str, doc: dict) -> None:
    spec = doc.get("spec") or {}
    template = spec.get("template") or {}
    c.expect(spec.get("replicas") == 1, where, "the worker must run exactly one replica")
    c.expect(dig(spec, "strategy", "type") == "Recreate", where, "strategy must be Recreate (never two workers)")
    selector = dig(spec, "selector", "matchLabels", default={}) or {}
    labels = dig(template, "metadata", "labels", default={}) or {}
    c.expect(bool(selector) and all(labels.get(k) == v for k, v in selector.items()), where,
             "selector.matchLabels must match the pod labels")
    annotations = dig(template, "metadata", "annotations", default={}) or {}
    expected = {"prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORT), "prometheus.io/path": "/metrics"}
    for key, value in expected.items():
        c.expect(annotations.get(key) == value, where, f"pod annotation {key} must be {value!r}")
    commands = check_pod(c, where, template)
    c.expect(commands == [["worker"]], where, f"must run worker (runs {commands})")
    for container in dig(template, "spec", "containers", default=[]) or []:
        ready = dig(container, "readinessProbe", "httpGet", default={}) or {}
        c.expect(ready.get("path") == "/healthz", where, "readinessProbe must GET /healthz")
        c.expect(port_number(container, ready.get("port")) == METRICS_PORT, where,
                 f"readinessProbe must use port {METRICS_PORT}")
        # Liveness must not follow /healthz: a failed run would restart the pod and drop its retries.
        alive = dig(container, "livenessProbe", "tcpSocket", default={}) or {}
        c.expect(port_number(container, alive.get("port")) == METRICS_PORT, where,
                 f"livenessProbe must be a TCP check of port {METRICS_PORT}")


def check_kubernetes(c: Checker, root: Path) -> list[list[str]]:
    directory = root / "infra" / "kubernetes"
    docs = load_manifests(c, directory)
    by_kind: dict[str, list[tuple[str, dict]]] = {}
    for where, doc in docs:
        check_metadata(c, where, doc)
        by_kind.setdefault(doc.get("kind"), []).append((where, doc))
    for kind in ("Namespace", "ServiceAccount", "ConfigMap", "CronJob", "Deployment", "NetworkPolicy"):
        c.expect(kind in by_kind, str(directory), f"has no {kind}")
    for where, doc in by_kind.get("ServiceAccount", []):
        client_id = dig(doc, "metadata", "annotations", "azure.workload.identity/client-id")
        c.expect(isinstance(client_id, str) and bool(client_id), where,
                 "needs the azure.workload.identity/client-id annotation")
    for where, doc in by_kind.get("ConfigMap", []):
        text = dig(doc, "data", "jwk-rotator.toml")
        if c.expect(isinstance(text, str), where, "must hold data.jwk-rotator.toml"):
            check_rotator_config(c, where, text, "workload-identity", PUBLISH_DIR)
    cron_commands: list[list[str]] = []
    for where, doc in by_kind.get("CronJob", []):
        cron_commands = check_cronjob(c, where, doc)
    for where, doc in by_kind.get("Deployment", []):
        check_deployment(c, where, doc)
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    for resource in kustomization.get("resources", []):
        c.expect((directory / resource).is_file(), "kustomization.yaml", f"resource {resource} does not exist")
    name, tag = c.image.rsplit(":", 1)
    for entry in kustomization.get("images", []):
        c.expect((entry.get("name"), entry.get("newName"), str(entry.get("newTag"))) == (name, name, tag),
                 "kustomization.yaml", f"images: must map {name} to {name} tag {tag!r} (the published image), has {entry}")
    return cron_commands


def bicep_block(text: str, start: str) -> str:
    """The bracketed block that starts at the first line containing `start`, or ''."""
    at = text.find(start)
    opening = text.find("{", at)
    if at < 0 or opening < 0:
        return ""
    depth = 0
    for j in range(opening, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[at:j + 1]
    return text[at:]


def bicep_job_commands(c: Checker, job: str) -> list[list[str]]:
    """The args after --config FILE of each container of the Container Apps Job."""
    where = "infra/azure/main.bicep rotateJob"
    c.expect("initContainers" not in job, where,
             "must have no initContainers: in consumption-only and dedicated workload profile "
             "environments init containers get no managed identity token (401/403)")
    names = re.findall(r"^\s+name: '([a-z0-9-]+)'\s*$", job.split("containers:", 1)[-1].split("volumes:", 1)[0], re.M)
    c.expect(names == ["rotate"], where, f"must run exactly one main container named rotate (has {names})")
    commands = []
    for args in re.findall(r"args: concat\(configArgs, \[(.*?)\]\)", job, re.S):
        items = [a.strip() for a in args.split("\n") if a.strip()]
        commands.append([a.strip("'") if a.startswith("'") else f"<{a}>" for a in items])
    return commands


def check_azure(c: Checker, root: Path) -> list[list[str]]:
    directory = root / "infra" / "azure"
    text = (directory / "main.bicep").read_text()
    for needle, message in [
        ("enableRbacAuthorization: true", "Key Vault must use RBAC authorization"),
        ("enablePurgeProtection: true", "Key Vault must enable purge protection"),
        ("enableSoftDelete: true", "Key Vault must enable soft delete"),
        ("b86a8fe4-44ce-4948-aee5-eccb2c155cd7", "the identity must get Key Vault Secrets Officer"),
        ("triggerType: 'Schedule'", "the job must have a schedule trigger"),
        ("parallelism: 1", "the job must run one replica at a time"),
        ("Microsoft.KeyVault.SecretNearExpiry", "Event Grid must forward SecretNearExpiry"),
        ("dir = \"/work/jwks\"", "the generated config must publish to /work/jwks"),
        ("mountPath: '/work/jwks'", "the job must mount a writable /work/jwks"),
        (f"name: '{LOG_VAR}'", f"the job must set {LOG_VAR}, the log variable jwk-rotator reads"),
        ("name: 'AZURE_CLIENT_ID'", "the job must set AZURE_CLIENT_ID to the identity's client id"),
        (f"param containerImage string = '{c.image}'", f"containerImage must default to the published image {c.image}"),
        ("param exitOn string = 'warning'", "exitOn must default to warning"),
        ("param replicaRetryLimit int = 0", "replicaRetryLimit must default to 0: Container Apps would retry a finding's exit 11-13"),
        ("module registryPull 'acr-pull.bicep'", "the template must grant AcrPull on registryResourceId (module acr-pull.bicep)"),
    ]:
        c.expect(needle in text, "infra/azure/main.bicep", message)
    c.expect(re.search(r"name: 'RUST_LOG'", text) is None, "infra/azure/main.bicep",
             f"sets RUST_LOG: use {LOG_VAR}, which jwk-rotator reads first")
    pull = directory / "acr-pull.bicep"
    if c.expect(pull.is_file(), str(directory), "needs acr-pull.bicep (AcrPull for the job identity)"):
        pull_text = pull.read_text()
        c.expect(ACR_PULL_ROLE_ID in pull_text, pull.name, f"must assign AcrPull ({ACR_PULL_ROLE_ID})")
        c.expect("Microsoft.Authorization/roleAssignments" in pull_text and "scope: registry" in pull_text,
                 pull.name, "must assign the role on the registry")
    job = bicep_block(text, "resource rotateJob ")
    depends = re.search(r"dependsOn: \[(.*?)\]", job, re.S)
    c.expect(depends is not None and "registryPull" in depends.group(1), "infra/azure/main.bicep rotateJob",
             "must dependsOn registryPull: Container Apps checks the image pull when the job is created")
    commands = bicep_job_commands(c, job)
    for params in sorted(directory.glob("*.bicepparam")):
        ptext = params.read_text()
        image = re.search(r"^param containerImage = '([^']*)'", ptext, re.M)
        c.expect(image is None or image.group(1) == c.image, params.name,
                 f"containerImage must be the published image {c.image}")
        exit_on = re.search(r"^param exitOn = '([^']*)'", ptext, re.M)
        c.expect(exit_on is None or exit_on.group(1) == "warning", params.name, "exitOn must be warning")
        retries = re.search(r"^param replicaRetryLimit = (\d+)", ptext, re.M)
        c.expect(retries is None or retries.group(1) == "0", params.name,
                 "replicaRetryLimit must be 0: a retry runs rotate again for every finding (exit 11-13)")
        policy = re.search(r"param rotatorPolicyToml = '''(.*?)'''", ptext, re.S)
        if c.expect(policy is not None, params.name, "must set rotatorPolicyToml"):
            generated = (
                '[store]\nkind = "azure-key-vault"\nvault_url = "https://kv.vault.azure.net/"\n'
                'credential = "managed-identity"\n[publish]\ndir = "/work/jwks"\n' + policy.group(1)
            )
            check_rotator_config(c, params.name, generated, "managed-identity", PUBLISH_DIR)
    c.expect({p.name for p in directory.glob("*.bicepparam")} >= {"test.bicepparam", "prod.bicepparam"},
             str(directory), "needs test.bicepparam and prod.bicepparam")
    exit_on = re.search(r"param exitOn string = '([a-z]+)'", text)
    return [[a if a != "<exitOn>" else (exit_on.group(1) if exit_on else a) for a in cmd] for cmd in commands]


def check_log_variable(c: Checker, root: Path) -> None:
    main = (root / "src" / "main.rs").read_text()
    c.expect(f'EnvFilter::try_from_env("{LOG_VAR}")' in main, "src/main.rs",
             f"the binary must read {LOG_VAR} (the variable every manifest sets)")


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    version = tomllib.loads((root / "Cargo.toml").read_text())["package"]["version"]
    c = Checker(f"{PUBLISHED_IMAGE}:{version}")
    cron = check_kubernetes(c, root)
    azure = check_azure(c, root)
    workflow = check_workflow(c, root)
    check_release(c, root)
    check_log_variable(c, root)
    for name, commands in [("CronJob", cron), ("Container Apps Job", azure), ("rotate workflow", workflow)]:
        c.expect(commands == [ROTATE], name, f"must run `jwk-rotator --config FILE {' '.join(ROTATE)}`, runs {commands}")
    if c.problems:
        print("\n".join(c.problems))
        print(f"manifest check: {len(c.problems)} of {c.checked} checks failed")
        return 1
    print(f"manifest check: {c.checked} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
