"""The lab's agent stand-ins: stdlib-Python doubles of amazon-ssm-agent and amazon-cloudwatch-agent,
packaged as .deb files by ``build.py`` (sources in ``src/``)."""
