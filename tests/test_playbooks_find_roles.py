"""The playbooks under ansible/playbooks/ find the kit's roles from any working directory (the
README runs them from the repository's root, where ansible/ansible.cfg's roles_path is not read):
Ansible looks in a playbook's own roles/ folder, which links to ansible/roles."""
import re
from pathlib import Path

PLAYBOOKS = Path(__file__).resolve().parent.parent / "ansible" / "playbooks"


def test_every_role_a_playbook_includes_is_found_beside_it():
    names = set()
    for playbook in PLAYBOOKS.glob("*.yml"):
        names |= set(re.findall(r"^\s*(?:-\s*)?(?:role|name):\s*(celery_\w+)\s*$", playbook.read_text(), re.M))
    assert names, "no role included by any playbook: the pattern above is stale"
    missing = sorted(n for n in names if not (PLAYBOOKS / "roles" / n / "tasks").is_dir())
    assert not missing, f"ansible/playbooks/roles/ does not lead to {missing}"
