#!/usr/bin/env python3
"""A dynamic inventory script fixture: --list with _meta, --host for completeness."""

import json
import sys

INVENTORY = {
    "all": {"vars": {"source": "script"}},
    "edge": {"hosts": ["edge1", "edge2"], "vars": {"region": "eu-west"}, "children": ["edge_canary"]},
    "edge_canary": {"hosts": ["edge3"]},
    "cache": {"hosts": ["cache1"]},
    "_meta": {
        "hostvars": {
            "edge1": {"ansible_host": "192.0.2.101", "rack": 7},
            "edge3": {"ansible_host": "192.0.2.103", "ansible_port": "2203", "tags": ["canary"]},
            "cache1": {"ansible_ssh_common_args": "-o StrictHostKeyChecking=no"},
        }
    },
}

if __name__ == "__main__":
    if sys.argv[1:] == ["--list"]:
        json.dump(INVENTORY, sys.stdout)
    elif len(sys.argv) == 3 and sys.argv[1] == "--host":
        json.dump(INVENTORY["_meta"]["hostvars"].get(sys.argv[2], {}), sys.stdout)
    else:
        sys.exit("usage: dynamic.py --list | --host HOST")
