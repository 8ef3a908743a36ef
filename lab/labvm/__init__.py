"""QEMU launcher for the kit's VM lab: topology, networking, seeds, VMs.

Entry point: ``lab/labctl`` (see ``labvm.cli``).
"""
