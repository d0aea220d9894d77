"""The lab's AWS emulator: moto in server mode plus the lab's fidelity extensions.

Run it with ``PYTHONPATH=tests/lab python -m emulator``; import ``emulator.server`` to start it
in-process (tests). The pieces:

- ``server``      builds the WSGI app (moto's dispatcher wrapped in ``middleware``) and serves it.
- ``middleware``  call counting, fault injection and the ``/_lab/`` control endpoints.
- ``ec2_ext``     interface VPC endpoint fidelity (DNS entries, ENIs, DnsOptions, validation).
- ``route53_ext`` Route 53 VPC association authorizations.
- ``tagging_ext`` Resource Groups Tagging API GetResources for the hybrid managed nodes.
- ``seed``        the account's pre-existing VPC, subnets and agent buckets.
- ``clock``       the emulator's shiftable notion of "now".
"""

# A fixed string placed in the server's argv so a stale emulator can be found with `pkill -f`.
PROCESS_MARKER = "hybrid-onboard-lab-emulator"
