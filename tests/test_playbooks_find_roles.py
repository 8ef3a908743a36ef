"""The playbooks find the kit's roles and their filters from any working directory (the README runs
them from the repository's root, where ansible/ansible.cfg's roles_path and collections_path are not
read). They name every role by its FQCN, celery_kit.deploy.<role>, and Ansible looks for collections
in a playbook's own collections/ folder: ansible/collections beside site.yml, and
ansible/playbooks/collections, which links to it. There, ansible_collections/celery_kit/deploy links
back to ansible/: the checkout is the collection celery_kit.deploy."""
import os
import re
from pathlib import Path

ANSIBLE = Path(__file__).resolve().parent.parent / "ansible"
PLAYBOOKS = ANSIBLE / "playbooks"
ROLE_REF = re.compile(
    r"^\s*(?:-\s*)?(?:role|name):\s*([\w.]*celery_(?:redis|common|supervisor|worker|beat|flower))\s*$", re.M)


def test_every_playbook_names_the_roles_by_fqcn_and_they_exist():
    refs = {}
    for playbook in [ANSIBLE / "site.yml", *PLAYBOOKS.glob("*.yml")]:
        for ref in ROLE_REF.findall(playbook.read_text()):
            refs.setdefault(ref, set()).add(playbook.name)
    assert refs, "no role included by any playbook: the pattern above is stale"
    short = {ref: sorted(where) for ref, where in refs.items() if not ref.startswith("celery_kit.deploy.")}
    assert not short, f"roles named without their collection: {short}"
    missing = sorted(ref for ref in refs if not (ANSIBLE / "roles" / ref.rsplit(".", 1)[1] / "tasks").is_dir())
    assert not missing, f"no such role in the collection: {missing}"


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
