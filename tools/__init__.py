"""The operator's offline tools: render, rehearse, verify and the loopback data plane.

They import the program (:mod:`components`); the program never imports them.
"""
