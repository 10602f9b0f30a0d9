"""What the tests share: the stand-in cluster, the test PKI, schema checks, data-plane helpers.

Test modules import from here, never from each other.
"""
