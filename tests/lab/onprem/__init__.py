"""On-prem side of the lab: network namespaces, the cached Debian image, and the booted hosts.

`python -m onprem up --hosts N | status | down` (with PYTHONPATH=tests/lab) drives it by hand;
`scripts/lab` wires it into the whole lab.
"""
