"""The playbooks under ansible/playbooks/ find the kit's roles and their filters from any working
directory (the README runs them from the repository's root, where ansible/ansible.cfg's roles_path
and collections_path are not read): Ansible looks in a playbook's own roles/ folder, which links to
ansible/roles, and its own collections/ folder, which links to ansible/collections. There,
ansible_collections/celery_kit/deploy links back to ansible/: the checkout is the collection
celery_kit.deploy whose plugins/filter/ the roles call by FQCN."""
import os
import re
from pathlib import Path

ANSIBLE = Path(__file__).resolve().parent.parent / "ansible"
PLAYBOOKS = ANSIBLE / "playbooks"


def test_every_role_a_playbook_includes_is_found_beside_it():
    names = set()
    for playbook in PLAYBOOKS.glob("*.yml"):
        names |= set(re.findall(r"^\s*(?:-\s*)?(?:role|name):\s*(celery_\w+)\s*$", playbook.read_text(), re.M))
    assert names, "no role included by any playbook: the pattern above is stale"
    missing = sorted(n for n in names if not (PLAYBOOKS / "roles" / n / "tasks").is_dir())
    assert not missing, f"ansible/playbooks/roles/ does not lead to {missing}"


def test_the_checkout_is_the_collection_beside_every_playbook():
    link = ANSIBLE / "collections" / "ansible_collections" / "celery_kit" / "deploy"
    # Relative links: the checkout works wherever it is cloned.
    assert link.is_symlink() and not os.path.isabs(os.readlink(link))
    assert link.resolve() == ANSIBLE
    assert (PLAYBOOKS / "collections").is_symlink() and not os.path.isabs(os.readlink(PLAYBOOKS / "collections"))
    for playbooks in (ANSIBLE, PLAYBOOKS):
        deploy = playbooks / "collections" / "ansible_collections" / "celery_kit" / "deploy"
        assert (deploy / "plugins" / "filter" / "celery_kit.py").is_file(), playbooks
        assert (deploy / "plugins" / "filter" / "celery_worker.py").is_file(), playbooks
