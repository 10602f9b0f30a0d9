"""Entry point for `pulumi up` / `pulumi preview`: all the work is in components/program.py."""

from components.program import run

run()
