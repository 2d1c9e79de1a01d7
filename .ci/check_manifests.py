#!/usr/bin/env python3
"""Offline checks of the deployment files that no installable linter covers.

- Every Kubernetes manifest in infra/kubernetes parses, has apiVersion, kind and a valid
  metadata.name, and the workloads carry the security settings jwk-rotator relies on (non-root,
  read-only root filesystem, no privilege escalation, all capabilities dropped, resource
  limits, Azure workload identity, the config mounted from the ConfigMap at /config, a writable
  publish directory).
- The CronJob runs `rotate` with concurrencyPolicy Forbid; the worker Deployment runs `worker`
  with probes on /healthz port 9464 and the Prometheus scrape annotations.
- Every example jwk-rotator.toml (ConfigMap, GitHub workflow config, Bicep parameter files)
  parses as TOML and points its publish dir at the writable mount.
- The Container Apps Job, the CronJob and the rotate workflow run the same command line:
  `jwk-rotator --config FILE rotate`, then `status`.

Usage: python3 .ci/check_manifests.py [REPO_ROOT]. Exits 1 with one line per problem.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import yaml

NAMESPACE = "jwk-rotator"
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
}


class Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.checked = 0

    def expect(self, ok: bool, where: str, message: str) -> bool:
        self.checked += 1
        if not ok:
            self.problems.append(f"{where}: {message}")
        return ok


def dig(node, *path, default=None):
    """node[path[0]][path[1]]... or default when any step is missing."""
    for key in path:
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and -len(node) <= key < len(node):
            node = node[key]
        else:
            return default
    return node


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


def check_metadata(c: Checker, where: str, doc: dict) -> None:
    api, kind = doc.get("apiVersion"), doc.get("kind")
    c.expect(isinstance(api, str) and bool(api), where, "apiVersion is missing")
    c.expect(isinstance(kind, str) and bool(kind), where, "kind is missing")
    c.expect((api, kind) in KNOWN_KINDS, where, f"unexpected apiVersion/kind {api}/{kind}")
    name = dig(doc, "metadata", "name")
    c.expect(isinstance(name, str) and DNS1123.match(name or "") is not None and len(name) <= 63,
             where, f"metadata.name {name!r} is not a DNS-1123 label")
    if kind != "Namespace":
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
    c.expect(":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), at,
             f"image {image!r} must be pinned to a tag or digest, not latest")
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
    c.expect([cmd[:1] for cmd in commands] == [["rotate"], ["status"]], where,
             f"must run rotate, then status (runs {commands})")
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


def check_rotator_config(c: Checker, where: str, text: str, credential: str, publish_dir: str) -> None:
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        c.expect(False, where, f"jwk-rotator.toml is not valid TOML: {err}")
        return
    c.expect(dig(config, "store", "kind") == "azure-key-vault", where, 'store.kind must be "azure-key-vault"')
    c.expect(str(dig(config, "store", "vault_url", default="")).startswith("https://"), where,
             "store.vault_url must be an https URL")
    c.expect(dig(config, "store", "credential") == credential, where, f'store.credential must be "{credential}"')
    c.expect(dig(config, "publish", "dir") == publish_dir, where, f'publish.dir must be "{publish_dir}"')
    clients = config.get("client") or []
    c.expect(bool(clients), where, "needs at least one [[client]]")
    for client in clients:
        c.expect(re.fullmatch(r"[A-Za-z0-9-]+", str(client.get("name", ""))) is not None, where,
                 f"client name {client.get('name')!r} must match [A-Za-z0-9-]+")
        envs = client.get("environments") or []
        c.expect(bool(envs) and all(re.fullmatch(r"[A-Z0-9]+", e) for e in envs), where,
                 f"client environments {envs} must be non-empty and match [A-Z0-9]+")


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
    return cron_commands


def bicep_args(text: str, container: str) -> list[str]:
    """The args of one container in main.bicep: concat(configArgs, ['CMD'])."""
    block = re.search(rf"name: '{container}'.*?args: concat\(configArgs, \[\s*'([a-z-]+)'", text, re.S)
    config = re.search(r"var configArgs = \[\s*'([^']+)'\s*'([^']+)'\s*\]", text)
    if not block or not config:
        return []
    return [config.group(1), config.group(2), block.group(1)]


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
    ]:
        c.expect(needle in text, "infra/azure/main.bicep", message)
    for params in sorted(directory.glob("*.bicepparam")):
        policy = re.search(r"param rotatorPolicyToml = '''(.*?)'''", params.read_text(), re.S)
        if c.expect(policy is not None, params.name, "must set rotatorPolicyToml"):
            generated = (
                '[store]\nkind = "azure-key-vault"\nvault_url = "https://kv.vault.azure.net/"\n'
                'credential = "managed-identity"\n[publish]\ndir = "/work/jwks"\n' + policy.group(1)
            )
            check_rotator_config(c, params.name, generated, "managed-identity", PUBLISH_DIR)
    c.expect({p.name for p in directory.glob("*.bicepparam")} >= {"test.bicepparam", "prod.bicepparam"},
             str(directory), "needs test.bicepparam and prod.bicepparam")
    return [bicep_args(text, "rotate")[2:], bicep_args(text, "status")[2:]] if bicep_args(text, "rotate") else []


def check_workflow(c: Checker, root: Path) -> list[list[str]]:
    where = ".github/workflows/rotate.yml"
    workflow = yaml.safe_load((root / where).read_text())
    steps = dig(workflow, "jobs", "rotate", "steps", default=[]) or []
    runs = [step.get("run", "") for step in steps]
    commands: list[list[str]] = []
    for line in "\n".join(runs).splitlines():
        found = re.search(r'\bjwk-rotator --config "\$JWK_ROTATOR_CONFIG" ([a-z-]+)', line)
        # plan may come first; rotate may appear twice (with and without --force)
        if found and found.group(1) in ("rotate", "status") and [found.group(1)] not in commands:
            commands.append([found.group(1)])
    config_path = dig(workflow, "env", "JWK_ROTATOR_CONFIG")
    if c.expect(isinstance(config_path, str), where, "env.JWK_ROTATOR_CONFIG must name the config file"):
        config_file = root / config_path
        if c.expect(config_file.is_file(), where, f"{config_path} does not exist"):
            text = config_file.read_text()
            check_rotator_config(c, config_path, text, "github-oidc", tomllib.loads(text)["publish"]["dir"])
    return commands


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    c = Checker()
    cron = check_kubernetes(c, root)
    azure = check_azure(c, root)
    workflow = check_workflow(c, root)
    expected = [["rotate"], ["status"]]
    for name, commands in [("CronJob", cron), ("Container Apps Job", azure), ("rotate workflow", workflow)]:
        c.expect(commands == expected, name, f"must run `jwk-rotator --config FILE rotate` then `status`, runs {commands}")
    if c.problems:
        print("\n".join(c.problems))
        print(f"manifest check: {len(c.problems)} of {c.checked} checks failed")
        return 1
    print(f"manifest check: {c.checked} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
