"""Entry point of the policy pack: ``pulumi preview --policy-pack policy`` runs this file.

Building ``PolicyPack`` starts the analyzer's gRPC server and blocks, so nothing imports this
file; the policies themselves live in ``mtls_policies.py`` (importable, unit-tested).
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from mtls_policies import PACK_NAME, policies

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=policies(),
    description="IKS ALB -> Istio ingress gateway: mutual TLS on the hop, no private keys outside Secrets.",
)
