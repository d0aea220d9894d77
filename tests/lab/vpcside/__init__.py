"""The lab's VPC side: follows the emulator's VPC state and serves the endpoint ENI IPs (HTTPS front)
and the Route 53 Resolver inbound IPs (DNS) inside the lab's VPC network namespace.

Modules: `state` (snapshot of the emulator), `policy` (security-group decisions), `netns` (addresses
and namespace-bound sockets), `front` (HTTPS forwarder), `resolver` (DNS answers and server),
`follower` (the polling loop); `python -m vpcside` runs the follower.
"""

PROCESS_MARKER = "hybrid-onboard-lab-vpcside"
