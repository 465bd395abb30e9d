"""The ACME client process the restart test kills: it runs N steps of an order, storing
the account and the order record after each step as the platform does, then waits."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from spruce.certs.acme import AcmeAccount, AcmeIssuer, OrderRecord
from spruce.certs.dns import Rfc2136Provider


def write(path: Path, data: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)  # a kill never leaves half a record


def main() -> None:
    state, directory_url, ca_bundle, dns_url, steps, *hostnames = sys.argv[1:]
    home = Path(state)
    issuer = AcmeIssuer(
        directory_url,
        AcmeAccount.generate(),
        ca_bundle=ca_bundle,
        dns01=Rfc2136Provider.from_url(dns_url),
        save_account=lambda a: write(home / "account.json", a.to_json()),
    )
    record: OrderRecord = issuer.begin(hostnames)
    write(home / "record.json", record.to_json())
    for _ in range(int(steps)):
        record = issuer.advance(record)
        write(home / "record.json", record.to_json())
    print("READY", record.stage, flush=True)
    time.sleep(600)  # killed here by the test


if __name__ == "__main__":
    main()
