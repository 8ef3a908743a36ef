"""``python -m celeryconfig``: print the effective configuration, secrets masked.

``--queues`` prints the declared queue names, one per line (the Ansible preflight uses it).
``--json`` prints machine-readable output.
"""
import argparse
import json
import sys

from celery.app.utils import HIDDEN_SETTINGS

import celeryconfig
from celeryconfig._env import MASK, mask_url
from celeryconfig.broker import app_redis_url


def mask(value):
    if isinstance(value, str):
        return mask_url(value)
    if isinstance(value, dict):
        # Keys Celery itself hides (password, token, key, ...), e.g. redbeat_redis_options["password"].
        return {k: MASK if isinstance(k, str) and HIDDEN_SETTINGS.search(k) else mask(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask(v) for v in value]
    return value


def _plain(value):
    """Render kombu Queues and schedules readably."""
    if hasattr(value, "routing_key") and hasattr(value, "name"):
        return f"Queue({value.name})"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m celeryconfig", description=__doc__)
    parser.add_argument("--queues", action="store_true", help="print declared queue names")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    if args.queues:
        print("\n".join(celeryconfig.DECLARED_QUEUES))
        return 0
    effective = mask(_plain({**celeryconfig.settings(), "app_redis_url": app_redis_url}))
    if args.json:
        json.dump(effective, sys.stdout, indent=2, sort_keys=True)
        print()
    else:
        width = max(map(len, effective))
        for key in sorted(effective):
            print(f"{key:<{width}}  {json.dumps(effective[key], sort_keys=True)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
