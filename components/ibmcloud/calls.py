"""The argument list of every ``ibmcloud`` call the package makes: one pure function per call.

The package runs exactly these lists, and the offline render (``tools.render.ibmcloud_calls``)
builds its summary of the commands an update runs from the same functions, so what a reviewer
reads is what runs.  Each function returns the words after ``ibmcloud``; values are passed
through unchanged (the render passes placeholders such as ``<ip>``).
"""

from __future__ import annotations

from collections.abc import Sequence

#: ``--type`` of the nlb-dns actions: classic clusters register NLB IPs, VPC clusters a hostname.
CLUSTER_TYPES = ("classic", "vpc")


def _values(flag: str, values: Sequence[str]) -> list[str]:
    """``flag value`` for each value; a bare string is refused (it would be split into letters)."""
    if isinstance(values, str) or not values:
        raise ValueError(f"{flag} needs a non-empty sequence of values, got {values!r}")
    return [word for value in values for word in (flag, value)]


def nlb_dns_ls(cluster: str) -> list[str]:
    """Every nlb-dns registration of the cluster as JSON: what create adopts from, waits on, deletes."""
    return ["ks", "nlb-dns", "ls", "--cluster", cluster, "--output", "json"]


def nlb_dns_create(cluster: str, cluster_type: str, addresses: Sequence[str], secret_namespace: str) -> list[str]:
    """Register the load balancer: all NLB IPs at once (classic) or its one hostname (VPC)."""
    if cluster_type == "classic":
        target = ["classic", "--cluster", cluster, *_values("--ip", addresses)]
    elif cluster_type == "vpc":
        if isinstance(addresses, str) or len(addresses) != 1:
            raise ValueError(f"a vpc registration takes exactly one load balancer hostname, got {addresses!r}")
        target = ["vpc-gen2", "--cluster", cluster, "--lb-host", addresses[0]]
    else:
        raise ValueError(f"cluster_type must be one of {', '.join(CLUSTER_TYPES)}, not {cluster_type!r}")
    return ["ks", "nlb-dns", "create", *target, "--secret-namespace", secret_namespace]


def nlb_dns_add(cluster: str, ips: Sequence[str], subdomain: str) -> list[str]:
    """Add IPs to an existing (adopted) classic registration that lacks them."""
    return ["ks", "nlb-dns", "add", "--cluster", cluster, *_values("--ip", ips), "--nlb-host", subdomain]


def nlb_dns_rm_classic(cluster: str, ip: str, subdomain: str) -> list[str]:
    """Unregister one NLB IP from a classic subdomain (the CLI takes one IP per call)."""
    return ["ks", "nlb-dns", "rm", "classic", "--cluster", cluster, "--ip", ip, "--nlb-host", subdomain]


def nlb_dns_rm_vpc(cluster: str, subdomain: str) -> list[str]:
    """Unregister the load balancer hostname from a VPC subdomain."""
    return ["ks", "nlb-dns", "rm", "vpc-gen2", "--cluster", cluster, "--nlb-subdomain", subdomain]


def nlb_dns_secret_rm(cluster: str, subdomain: str) -> list[str]:
    """Remove the subdomain's certificate secret, once no load balancer is registered to it."""
    return ["ks", "nlb-dns", "secret", "rm", "--cluster", cluster, "--nlb-subdomain", subdomain]


def ingress_secret_get(cluster: str, name: str, namespace: str) -> list[str]:
    """An Ingress secret as JSON: its certificate CRN, or "not found"."""
    return ["ks", "ingress", "secret", "get", "--cluster", cluster, "--name", name, "--namespace", namespace,
            "--output", "json"]


def ingress_secret_create(cluster: str, name: str, namespace: str, crn: str) -> list[str]:
    """An IKS-managed copy of a certificate (by CRN) in another namespace; IKS renews it."""
    return ["ks", "ingress", "secret", "create", "--cluster", cluster, "--cert-crn", crn, "--name", name,
            "--namespace", namespace]


def ingress_secret_update(cluster: str, name: str, namespace: str, crn: str) -> list[str]:
    """Point an existing copy at another certificate (the original's CRN changed)."""
    return ["ks", "ingress", "secret", "update", "--cluster", cluster, "--name", name, "--namespace", namespace,
            "--cert-crn", crn]


def ingress_secret_rm(cluster: str, name: str, namespace: str) -> list[str]:
    """Remove the copy."""
    return ["ks", "ingress", "secret", "rm", "--cluster", cluster, "--name", name, "--namespace", namespace]


def ingress_secret_ls(cluster: str) -> list[str]:
    """Every Ingress secret of the cluster as JSON: the fresh look after a failed ``rm``.

    A list, so a missing secret is an absent row, whatever words the CLI would choose for "not found".
    """
    return ["ks", "ingress", "secret", "ls", "--cluster", cluster, "--output", "json"]


def cluster_get(cluster: str) -> list[str]:
    """The cluster as JSON: where its ALB Ingress subdomain and TLS secret name are."""
    return ["ks", "cluster", "get", "--cluster", cluster, "--output", "json"]
