"""Each worker instance's settings and Celery command-line options, as the celery_worker role
resolves them (the collection filter celery_kit.deploy.celery_worker_resolve, ansible/plugins/filter/celery_worker.py,
called by _celery_worker_resolved in vars/main.yml).

The flag rules are tested on the filter directly. The equivalence test renders, with Ansible,
both the role's _celery_worker_resolved and the Jinja program it replaced (REFERENCE below) over
inventories with native, string and templated values, and requires the same result.
"""
from __future__ import annotations

import json
import sys

import pytest
import yaml

from roles_support import ANSIBLE_DIR, ROLES_DIR, ansible_playbook

ROLE = ROLES_DIR / "celery_worker"
sys.path.insert(0, str(ANSIBLE_DIR / "plugins" / "filter"))

from celery_worker import celery_worker_resolve  # noqa: E402

# The role's defaults (defaults/main.yml) in the order vars/main.yml passes them.
DEFAULTS = {
    "pool": "prefork",
    "concurrency": 2,
    "autoscale": "",
    "prefetch_multiplier": None,
    "max_tasks_per_child": None,
    "max_memory_per_child": None,
    "loglevel": "INFO",
    "stop_timeout": 300,
    "memory_max": None,
    "send_events": True,
    "extra_args": ["--without-gossip", "--without-mingle"],
    "environment": {},
}


def test_defaults_here_are_the_roles():
    role = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert {k: v for k, v in DEFAULTS.items() if k not in ("autoscale", "environment")} == {
        k: role[f"celery_worker_{k}"] for k in DEFAULTS if k not in ("autoscale", "environment")}


def _opts(**instance) -> str:
    """The options of one instance named fast on queue high, with the role's defaults."""
    return celery_worker_resolve([{"name": "fast", "queues": ["high"], **instance}], DEFAULTS)[0]["opts"]


def test_defaults_give_pool_concurrency_events_and_the_default_extra_args():
    [resolved] = celery_worker_resolve([{"name": "fast", "queues": ["high"]}], DEFAULTS)
    assert list(resolved) == ["name", "queues", *DEFAULTS, "opts"]
    assert resolved == {"name": "fast", "queues": ["high"], **DEFAULTS,
                        "opts": "--pool=prefork --concurrency=2 --task-events --without-gossip --without-mingle"}


def test_autoscale_replaces_concurrency():
    assert _opts(autoscale="8,2", concurrency=4, extra_args=[]) == "--pool=prefork --autoscale=8,2 --task-events"
    assert _opts(autoscale="", concurrency=4, extra_args=[]) == "--pool=prefork --concurrency=4 --task-events"


@pytest.mark.parametrize("value, flag", [(None, None), (1, "--prefetch-multiplier=1"),
                                         ("4", "--prefetch-multiplier=4"), (0, "--prefetch-multiplier=0")])
def test_prefetch_is_on_the_command_line_unless_none(value, flag):
    opts = _opts(prefetch_multiplier=value).split()
    prefetch = [o for o in opts if o.startswith("--prefetch-multiplier")]
    assert prefetch == ([flag] if flag else []), opts


@pytest.mark.parametrize("key, flag", [("max_tasks_per_child", "--max-tasks-per-child"),
                                       ("max_memory_per_child", "--max-memory-per-child")])
@pytest.mark.parametrize("value, shown", [(None, None), (0, None), ("0", None), (50, "50"), ("50", "50")])
def test_a_recycling_limit_of_0_or_none_is_left_to_the_app(key, flag, value, shown):
    opts = _opts(**{key: value}).split()
    found = [o for o in opts if o.startswith(flag)]
    assert found == ([f"{flag}={shown}"] if shown else []), opts


@pytest.mark.parametrize("value, sends", [(True, True), ("yes", True), ("true", True), ("True", True), ("1", True),
                                          (1, True), ("on", True), (False, False), ("no", False), ("false", False),
                                          ("0", False), (0, False), ("off", False)])
def test_send_events_adds_task_events(value, sends):
    assert ("--task-events" in _opts(send_events=value).split()) is sends


@pytest.mark.parametrize("value", ["y", "Y", "t", " yes"])
def test_send_events_reads_every_true_the_argument_spec_accepts(value):
    """The argument spec (type: bool) accepts these as true; Jinja's bool filter read them as false
    (ansible-core 2.19 deprecates that): the equivalence cases below leave them out."""
    assert "--task-events" in _opts(send_events=value).split()


def test_extra_args_come_last_in_their_order():
    opts = _opts(extra_args=["--without-heartbeat", "-O", "fair"], max_tasks_per_child=10, prefetch_multiplier=1)
    assert opts == ("--pool=prefork --concurrency=2 --prefetch-multiplier=1 --max-tasks-per-child=10 "
                    "--task-events --without-heartbeat -O fair")


def test_an_instance_value_overrides_the_default_unless_none():
    instance = {"name": "long", "queues": ["long"], "pool": "solo", "concurrency": None, "stop_timeout": 900,
                "send_events": False, "extra_args": None, "environment": {"CELERY_RESULT_EXPIRES": "3600"}}
    [resolved] = celery_worker_resolve([instance], DEFAULTS)
    assert {k: resolved[k] for k in ("pool", "concurrency", "stop_timeout", "send_events", "extra_args",
                                     "environment")} == {
        "pool": "solo", "concurrency": 2, "stop_timeout": 900, "send_events": False,
        "extra_args": ["--without-gossip", "--without-mingle"], "environment": {"CELERY_RESULT_EXPIRES": "3600"}}
    assert resolved["opts"] == "--pool=solo --concurrency=2 --without-gossip --without-mingle"


def test_values_keep_their_type_and_instances_their_order():
    resolved = celery_worker_resolve([{"name": "b", "queues": ["low"], "max_tasks_per_child": "0"},
                                      {"name": "a", "queues": ["high"], "concurrency": "4"}], DEFAULTS)
    assert [r["name"] for r in resolved] == ["b", "a"]
    assert resolved[0]["max_tasks_per_child"] == "0"
    assert resolved[1]["concurrency"] == "4"
    assert resolved[1]["opts"].startswith("--pool=prefork --concurrency=4 ")


# The Jinja program _celery_worker_resolved was before the filter celery_worker_resolve replaced it
# (vars/main.yml at 321b0bc), verbatim: the reference the filter must reproduce.
REFERENCE = """\
{%- set out = [] -%}
{%- for i in celery_worker_instances -%}
{%- set d = {
      'pool': celery_worker_pool,
      'concurrency': celery_worker_concurrency,
      'autoscale': '',
      'prefetch_multiplier': celery_worker_prefetch_multiplier,
      'max_tasks_per_child': celery_worker_max_tasks_per_child,
      'max_memory_per_child': celery_worker_max_memory_per_child,
      'loglevel': celery_worker_loglevel,
      'stop_timeout': celery_worker_stop_timeout,
      'memory_max': celery_worker_memory_max,
      'send_events': celery_worker_send_events,
      'extra_args': celery_worker_extra_args,
      'environment': {},
   } -%}
{%- set r = {'name': i.name, 'queues': i.queues} -%}
{%- for k, v in d.items() -%}
{%- set _ = r.update({k: i[k] if (i[k] is defined and i[k] is not none) else v}) -%}
{%- endfor -%}
{%- set opts = ['--pool=' ~ r.pool] -%}
{%- if r.autoscale | length > 0 -%}
{%- set _ = opts.append('--autoscale=' ~ r.autoscale) -%}
{%- else -%}
{%- set _ = opts.append('--concurrency=' ~ r.concurrency) -%}
{%- endif -%}
{%- if r.prefetch_multiplier is not none -%}{%- set _ = opts.append('--prefetch-multiplier=' ~ r.prefetch_multiplier) -%}{%- endif -%}
{%- if r.max_tasks_per_child | int > 0 -%}{%- set _ = opts.append('--max-tasks-per-child=' ~ r.max_tasks_per_child) -%}{%- endif -%}
{%- if r.max_memory_per_child | int > 0 -%}{%- set _ = opts.append('--max-memory-per-child=' ~ r.max_memory_per_child) -%}{%- endif -%}
{%- if r.send_events | bool -%}{%- set _ = opts.append('--task-events') -%}{%- endif -%}
{%- set _ = out.append(r | combine({'opts': (opts + r.extra_args) | join(' ')})) -%}
{%- endfor -%}
{{ out }}"""  # noqa: E501

# Each case: variables over the role's defaults, as an inventory would set them. send_events takes
# every bool spelling on which Jinja's bool filter and the argument spec agree (not "y", "t", " yes").
_FAST = {"name": "fast", "queues": ["high", "default"]}
CASES = {
    "no-instances": {"celery_worker_instances": []},
    "defaults-only": {"celery_worker_instances": [_FAST, {"name": "bulk", "queues": ["low"]}]},
    "every-key-per-instance": {"celery_worker_instances": [{
        **_FAST, "pool": "solo", "concurrency": 8, "autoscale": "", "prefetch_multiplier": 1,
        "max_tasks_per_child": 50, "max_memory_per_child": 256000, "loglevel": "DEBUG", "stop_timeout": 900,
        "memory_max": "2G", "send_events": False, "extra_args": ["--without-heartbeat"],
        "environment": {"CELERY_RESULT_EXPIRES": "3600"}}]},
    "autoscale": {"celery_worker_instances": [{**_FAST, "autoscale": "8,2", "concurrency": 4},
                                              {"name": "bulk", "queues": ["low"], "autoscale": "4,1"}]},
    "none-per-instance": {"celery_worker_instances": [{
        **_FAST, "pool": None, "concurrency": None, "autoscale": None, "prefetch_multiplier": None,
        "max_tasks_per_child": None, "send_events": None, "extra_args": None, "environment": None}]},
    "string-numbers": {"celery_worker_instances": [
        {**_FAST, "concurrency": "4", "prefetch_multiplier": "1", "max_tasks_per_child": "0",
         "max_memory_per_child": "0", "stop_timeout": "60"},
        {"name": "long", "queues": ["long"], "max_tasks_per_child": "50", "max_memory_per_child": "256000",
         "prefetch_multiplier": "0"},
        {"name": "odd", "queues": ["low"], "max_tasks_per_child": " 7 ", "max_memory_per_child": "-1",
         "concurrency": "+3"}]},
    "string-booleans": {"celery_worker_instances": [
        {"name": f"e{n}", "queues": ["default"], "send_events": value}
        for n, value in enumerate(["yes", "no", "true", "false", "True", "FALSE", "1", "0", "on", "off",
                                   True, False, 1, 0])]},
    "templated-values": {"fast_cpus": 3, "celery_worker_instances": [
        {**_FAST, "concurrency": "{{ fast_cpus * 2 }}", "max_tasks_per_child": "{{ 10 * 10 }}",
         "send_events": "{{ fast_cpus > 2 }}", "extra_args": ["--hostname-suffix={{ fast_cpus }}"]}]},
    "other-defaults": {
        "celery_worker_pool": "threads", "celery_worker_concurrency": 16, "celery_worker_prefetch_multiplier": 4,
        "celery_worker_max_tasks_per_child": 1000, "celery_worker_max_memory_per_child": 0,
        "celery_worker_loglevel": "WARNING", "celery_worker_stop_timeout": 120, "celery_worker_memory_max": "1G",
        "celery_worker_send_events": False, "celery_worker_extra_args": [],
        "celery_worker_instances": [_FAST, {"name": "long", "queues": ["long"], "max_tasks_per_child": 0,
                                            "send_events": True, "pool": "prefork"}]},
    "string-defaults": {
        "celery_worker_concurrency": "3", "celery_worker_prefetch_multiplier": "2",
        "celery_worker_max_tasks_per_child": "0", "celery_worker_max_memory_per_child": "512000",
        "celery_worker_stop_timeout": "30", "celery_worker_send_events": "no",
        "celery_worker_instances": [_FAST, {"name": "events", "queues": ["low"], "send_events": "yes"}]},
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    """Per case, the reference program's result and the role's, rendered by ansible-playbook: one
    play per case, its variables loaded over the role's defaults and vars/main.yml, collecting both
    results in a fact (no module runs on the host); a last play writes them all to a file."""
    out = tmp_path_factory.mktemp("worker-flags")
    # vars/main.yml calls celery_kit.deploy.celery_worker_resolve: ansible/ansible.cfg's collections_path finds it.
    play = {"hosts": "localhost", "connection": "local", "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable}}
    plays = []
    for case, values in CASES.items():
        (out / f"{case}.yml").write_text(yaml.safe_dump(values))
        plays.append({
            "name": f"Resolve {case}", **play,
            "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml"),
                           str(out / f"{case}.yml")],
            "vars": {**play["vars"], "case": case, "reference_resolved": REFERENCE},
            "tasks": [{"name": "Keep both results", "ansible.builtin.set_fact": {
                "worker_flags": "{{ worker_flags | default({}) | combine({case: "
                                "{'reference': reference_resolved, 'role': _celery_worker_resolved}}) }}"}}],
        })
    plays.append({"name": "Write the results", **play, "tasks": [{"name": "Write", "ansible.builtin.copy": {
        "content": "{{ worker_flags | to_json }}", "dest": str(out / "resolved.json"), "mode": "0600"}}]})
    playbook = out / "resolve.yml"
    playbook.write_text(yaml.safe_dump(plays, sort_keys=False))
    result = ansible_playbook(str(playbook))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return json.loads((out / "resolved.json").read_text())


@pytest.mark.parametrize("case", list(CASES))
def test_the_filter_resolves_exactly_what_the_jinja_program_did(rendered, case):
    reference, role = rendered[case]["reference"], rendered[case]["role"]
    assert isinstance(reference, list), reference
    assert len(reference) == len(CASES[case]["celery_worker_instances"])
    assert role == reference
    # Same key order too (JSON objects keep it): the keys of the resolved dict in both.
    assert [list(r) for r in role] == [list(r) for r in reference]
