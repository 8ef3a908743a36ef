"""Ansible's linear strategy run over Mitogen (requirements/controller.txt pins `mitogen`).

Mitogen keeps one Python interpreter per host alive for the whole run instead of starting a new one
for every task; under TCG emulation interpreter start-up is most of a task's cost. The lab's Molecule
scenarios and `make lab` select it (ANSIBLE_STRATEGY=mitogen_linear with this directory on
ANSIBLE_STRATEGY_PLUGINS); the playbooks do not depend on it, and production runs use Ansible's own
strategies unless an operator opts in the same way.
"""

import ansible_mitogen.affinity
import ansible_mitogen.loaders
import ansible_mitogen.strategy

# Mitogen pins Ansible's processes to CPUs, and every child inherits the mask: on a two-core
# machine all of them, and the lab's QEMU processes started from a play, share one core while the
# other idles. The base Policy pins nothing; the scheduler balances.
ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()

_Linear = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, _Linear):
    pass
