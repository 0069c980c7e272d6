#!/usr/bin/env python3
"""An example dynamic inventory script: `maint inventory list -i inventory/dynamic.py`.

Ansible (and maint) run it with --list and read inventory JSON from stdout. A real script would ask
a CMDB or a cloud API; this one reads hosts from $MAINT_EXAMPLE_HOSTS ("name=address,...") so it
needs no network.
"""

import json
import os
import sys


def inventory() -> dict:
    spec = os.environ.get("MAINT_EXAMPLE_HOSTS", "app1=10.0.5.1,app2=10.0.5.2")
    hostvars = {}
    for item in filter(None, spec.split(",")):
        name, _, address = item.partition("=")
        hostvars[name] = {"ansible_host": address or name}
    return {
        "app": {"hosts": sorted(hostvars), "vars": {"ansible_user": "deploy"}},
        "_meta": {"hostvars": hostvars},
    }


if __name__ == "__main__":
    if sys.argv[1:] == ["--list"]:
        json.dump(inventory(), sys.stdout, indent=2)
    elif len(sys.argv) == 3 and sys.argv[1] == "--host":
        json.dump(inventory()["_meta"]["hostvars"].get(sys.argv[2], {}), sys.stdout)
    else:
        sys.exit("usage: dynamic.py --list | --host HOST")
