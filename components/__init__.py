"""Components of the iks-alb-istio-mtls program.

Keep this file free of imports: ``python3 -m components.ibmcloud`` runs outside the
program's virtualenv (pulumi-command replays it at delete time) and must import nothing
but the standard library.
"""
