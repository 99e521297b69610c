"""A connection to one cluster, made from a kubeconfig the way kubectl reads it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from vxcap.adapters.kube.errors import KubeError, NoKubeconfig, one_line, translated

# (connect, read) seconds for plain requests: an unroutable API server fails fast
# instead of hanging on the OS's connect timeout.
REQUEST_TIMEOUT = (10, 60)


def kubeconfig_paths(kubeconfig: str | None) -> list[str]:
    """--kubeconfig, else $KUBECONFIG (a list, like kubectl), else ~/.kube/config."""
    spec = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"  # empty means unset, as in kubectl
    return [os.path.expanduser(p) for p in spec.split(os.pathsep) if p]


def cluster_name(context: str) -> str:
    """Kind names its contexts `kind-<cluster>`; the cluster is what vxcap reports."""
    return context[len("kind-") :] if context.startswith("kind-") else context


@dataclass
class Connection:
    api: client.ApiClient
    context: str
    server: str

    @property
    def configuration(self) -> client.Configuration:
        return self.api.configuration

    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def translated(self, what: str, namespace: str = ""):
        return translated(what, self.server, self.context, namespace)

    def close(self) -> None:
        self.api.close()


def _contexts(paths: list[str]) -> tuple[list[str], str | None]:
    """Context names in all the files, and the current-context (the first file that sets one wins, as in kubectl)."""
    names: list[str] = []
    current = None
    for path in paths:
        if not Path(path).is_file():
            continue
        with open(path) as f:
            data = yaml.safe_load(f)
        if not isinstance(data, dict):
            raise KubeError(f"kubeconfig {path} is not a kubeconfig (expected a mapping with clusters, users, contexts)")
        for entry in data.get("contexts") or []:
            if isinstance(entry, dict) and entry.get("name") and entry["name"] not in names:
                names.append(str(entry["name"]))
        if current is None and data.get("current-context"):
            current = str(data["current-context"])
    return names, current


def connect(kubeconfig: str | None = None, context: str | None = None) -> Connection:
    paths = kubeconfig_paths(kubeconfig)
    if kubeconfig and not any(Path(p).is_file() for p in paths):
        raise KubeError(f"kubeconfig {kubeconfig}: no such file")
    if not any(Path(p).is_file() for p in paths):
        raise NoKubeconfig(f"no kubeconfig found ({os.pathsep.join(paths)}); give --kubeconfig or set KUBECONFIG")
    joined = os.pathsep.join(paths)
    try:
        contexts, current = _contexts(paths)
        chosen = context or current
        if not chosen:
            raise KubeError(f"kubeconfig {joined}: no current-context; give --context")
        if chosen not in contexts:
            raise KubeError(f"kubeconfig {joined}: no context {chosen!r} (contexts: {', '.join(contexts) or 'none'})")
        configuration = client.Configuration()
        config.load_kube_config(
            config_file=joined, context=chosen, client_configuration=configuration, persist_config=False
        )
    except KubeError:
        raise
    except ConfigException as err:
        raise KubeError(f"kubeconfig {joined}: {one_line(err)}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise KubeError(f"kubeconfig {joined} is not valid YAML{where}") from None
    except (OSError, TypeError, KeyError, AttributeError, ValueError) as err:
        raise KubeError(f"kubeconfig {joined} cannot be used: {one_line(err) or type(err).__name__}") from None
    return Connection(api=client.ApiClient(configuration), context=chosen, server=configuration.host)


def read_json(response: Any) -> Any:
    """The body of a response asked for with `_preload_content=False`, as plain JSON.

    vxcap reads API objects as dicts: the pure core takes dicts, and the client's
    models would drop fields they do not know (Calico's, newer Kubernetes').
    """
    try:
        return json.loads(response.data or b"null")
    finally:
        response.release_conn()
