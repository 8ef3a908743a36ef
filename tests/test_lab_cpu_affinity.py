"""The lab's VMs may use every CPU of the machine, however they were started.

Mitogen pins Ansible's processes to CPUs and children inherit the mask; the lab's Molecule
scenarios boot their VMs from a play, so without care all four QEMU processes share one core.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from roles_support import REPO

CPUS = sorted(os.sched_getaffinity(0))
needs_two = pytest.mark.skipif(len(CPUS) < 2, reason="pinning is invisible on one CPU")


@needs_two
def test_qemu_start_gives_the_vm_every_cpu_even_from_a_pinned_parent(tmp_path):
    log = tmp_path / "qemu.log"
    child = "import os; print(sorted(os.sched_getaffinity(0)))"
    script = (f"import os, pathlib, sys; from labvm import qemu; os.sched_setaffinity(0, {{{CPUS[-1]}}}); "
              f"qemu.start([sys.executable, '-c', {child!r}], pathlib.Path({str(log)!r}))")
    subprocess.run([sys.executable, "-c", script], cwd=REPO / "lab", check=True, timeout=60)
    assert log.read_text().strip() == str(CPUS)


@needs_two
def test_a_play_on_the_mitogen_strategy_runs_its_commands_on_every_cpu(tmp_path):
    playbook = tmp_path / "affinity.yml"
    playbook.write_text(
        "- hosts: localhost\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - ansible.builtin.command: python3 -c 'import os; print(sorted(os.sched_getaffinity(0)))'\n"
        "      register: mask\n"
        "      changed_when: false\n"
        "    - ansible.builtin.debug: {msg: 'MASK={{ mask.stdout }}'}\n")
    env = dict(os.environ, ANSIBLE_STRATEGY_PLUGINS=str(REPO / "lab" / "ansible_plugins" / "strategy"),
               ANSIBLE_STRATEGY="mitogen_linear", ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_DEPRECATION_WARNINGS="0")
    exe = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    args = ["-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}", str(playbook)]
    run = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"MASK={CPUS}" in run.stdout, run.stdout
