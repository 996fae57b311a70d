"""The Kubernetes manifests of deploy/kubernetes, read as ``kubectl apply -k`` would, and rendered for
``podman kube play`` (podman 4.3), which runs Pods and Deployments but no StatefulSet and no Service.

Pure: dictionaries in, dictionaries out. What is applied of the kustomization is only what it uses:
``resources`` (files, in order), ``namespace`` and ``images`` (``newName``/``newTag`` by image name);
anything else in it is refused, so a feature added there cannot be skipped here unnoticed.

The rendering for podman, rule by rule (each says what podman lacks):

- A Service is not rendered; podman's DNS answers pod names, so a workload of one replica with a
  Service of its own name (``scheduler``, ``ledger``) becomes a Pod of that name, and
  ``tcp://scheduler:5555`` resolves as it would through the Service.
- A StatefulSet replica becomes a Pod named ``<name>-<ordinal>`` (the name Kubernetes gives it), with
  the ``apps.kubernetes.io/pod-index`` label, and its ``volumeClaimTemplates`` become claims named as
  Kubernetes names them (``<template>-<name>-<ordinal>``), which podman makes named volumes.
- A Deployment of one replica becomes its Pod.
- Probes are dropped: podman 4.3 runs them as ``curl`` health checks from systemd timers (neither
  exists here); the test asks the probe endpoints itself.
- Container ports are dropped: podman 4.3 publishes each ``containerPort`` on the host (Kubernetes
  publishes none), where two pods' ``9100`` collide. Pods reach each other on the pod network.
- A Secret volume becomes a ``hostPath`` volume of a folder holding the Secret's files: podman 4.3
  writes a Secret's ``data`` into its volume still base64-encoded. The folder's files are made as the
  manifests' ``defaultMode`` and ``fsGroup`` would (deploy/test/run.py).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]
KUSTOMIZE_KEYS = frozenset({"apiVersion", "kind", "namespace", "resources", "images"})
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


class ManifestError(Exception):
    """The manifests use something this reader does not apply."""


def load(directory: Path) -> list[Doc]:
    """Every object of the kustomization in ``directory``, with its namespace and images applied."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    unknown = set(kustomization) - KUSTOMIZE_KEYS
    if unknown:
        raise ManifestError(f"kustomization.yaml uses {', '.join(sorted(unknown))}: not applied by this reader")
    images = {image["name"]: image for image in kustomization.get("images", [])}
    docs: list[Doc] = []
    for resource in kustomization["resources"]:
        for doc in yaml.safe_load_all((directory / resource).read_text(encoding="utf-8")):
            if doc is None:
                continue
            if "namespace" in kustomization and doc["kind"] != "Namespace":
                doc["metadata"]["namespace"] = kustomization["namespace"]
            for container in containers(doc):
                container["image"] = _image(container["image"], images)
            docs.append(doc)
    return docs


def _image(reference: str, images: dict[str, dict[str, str]]) -> str:
    name, _, tag = reference.partition(":")
    override = images.get(name)
    if override is None:
        return reference
    new_tag = override.get("newTag", tag)
    return override.get("newName", name) + (f":{new_tag}" if new_tag else "")


def pod_spec(doc: Doc) -> Doc | None:
    if doc["kind"] in ("Deployment", "StatefulSet"):
        spec: Doc = doc["spec"]["template"]["spec"]
        return spec
    if doc["kind"] == "Pod":
        pod: Doc = doc["spec"]
        return pod
    return None


def containers(doc: Doc) -> list[Doc]:
    spec = pod_spec(doc)
    return list(spec["containers"]) if spec is not None else []


def find(docs: Iterable[Doc], kind: str, name: str) -> Doc:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise KeyError(f"no {kind} {name}")


def arg(container: Doc, flag: str) -> str | None:
    """The value after ``flag`` in a container's args, or None."""
    args: list[str] = container["args"]
    return args[args.index(flag) + 1] if flag in args else None


def set_arg(container: Doc, flag: str, value: str) -> None:
    """Set ``flag``'s value in a container's args (a patch the test renders, as a kustomize patch would)."""
    args: list[str] = container["args"]
    if flag not in args:
        raise ManifestError(f"container {container['name']} has no {flag} to patch")
    args[args.index(flag) + 1] = value


def _own_service(docs: list[Doc], name: str) -> bool:
    return any(d["kind"] == "Service" and d["metadata"]["name"] == name and d["spec"].get("clusterIP") != "None"
               for d in docs)


def _pod(template: Doc, name: str, labels: dict[str, str], secrets: Mapping[str, Path]) -> Doc:
    spec = copy.deepcopy(template["spec"])
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            folder = secrets[volume.pop("secret")["secretName"]]
            volume["hostPath"] = {"path": str(folder), "type": "Directory"}
    spec.setdefault("restartPolicy", "Always")
    for container in spec["containers"]:
        for field in ("startupProbe", "livenessProbe", "readinessProbe", "ports"):
            container.pop(field, None)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {**template["metadata"].get("labels", {}), **labels},
                         "annotations": dict(template["metadata"].get("annotations", {}))},
            "spec": spec}


def render_for_podman(docs: list[Doc], secrets: Mapping[str, Path]) -> list[Doc]:
    """What ``podman kube play`` runs for ``docs`` (see the module's rules); ``secrets`` holds the
    folder of each Secret's files."""
    out: list[Doc] = []
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind in ("Namespace", "Service"):
            continue
        if kind in ("ConfigMap", "Secret", "PersistentVolumeClaim", "Pod"):
            out.append(copy.deepcopy(doc))
        elif kind == "Deployment":
            if doc["spec"].get("replicas", 1) != 1:
                raise ManifestError(f"Deployment {name}: only one replica is rendered")
            out.append(_pod(doc["spec"]["template"], name, {}, secrets))
        elif kind == "StatefulSet":
            replicas = doc["spec"].get("replicas", 1)
            for ordinal in range(replicas):
                pod_name = name if replicas == 1 and _own_service(docs, name) else f"{name}-{ordinal}"
                pod = _pod(doc["spec"]["template"], pod_name,
                           {POD_INDEX_LABEL: str(ordinal), "statefulset.kubernetes.io/pod-name": f"{name}-{ordinal}"},
                           secrets)
                for claim in doc["spec"].get("volumeClaimTemplates", []):
                    volume = claim["metadata"]["name"]
                    pod["spec"].setdefault("volumes", []).append(
                        {"name": volume, "persistentVolumeClaim": {"claimName": f"{volume}-{name}-{ordinal}"}})
                out.append(pod)
        else:
            raise ManifestError(f"{kind} {name}: not rendered for podman")
    return out


def dump(docs: Iterable[Doc]) -> str:
    return yaml.safe_dump_all(list(docs), sort_keys=False)
