"""Parses jwk-rotator's event documents with the CloudEvents SDK for Python (PyPI `cloudevents`),
an implementation independent of ours: each sample, as the webhook received it (content type and
body), must read as a CloudEvents 1.0 structured-mode event with the attributes DESIGN.md fixes.

Usage: check_cloudevents.py SAMPLES.jsonl   (written by the `events::` integration test)
"""

import json
import sys

from cloudevents.core.bindings.http import HTTPMessage, from_http_event

TYPES = {
    "key.generated", "key.published", "key.registered", "key.promoted", "key.demoted",
    "key.retired", "key.purged", "run.failed", "restart.succeeded", "restart.failed",
}
DATA = {"key_set", "kid", "from", "to", "reason", "actor", "run_id"}


def check(sample):
    message = HTTPMessage(headers={"content-type": sample["content_type"]},
                          body=sample["body"].encode("utf-8"))
    event = from_http_event(message)
    attributes = event.get_attributes()
    problems = []
    if attributes.get("specversion") != "1.0":
        problems.append(f"specversion {attributes.get('specversion')!r}")
    kind = attributes.get("type", "")
    if not kind.startswith("no.jwk-rotator.") or kind[len("no.jwk-rotator."):] not in TYPES:
        problems.append(f"type {kind!r}")
    if not str(attributes.get("source", "")).startswith("jwk-rotator/"):
        problems.append(f"source {attributes.get('source')!r}")
    for name in ("id", "subject", "time", "datacontenttype"):
        if not attributes.get(name):
            problems.append(f"no {name}")
    data = event.get_data()
    if isinstance(data, (bytes, str)):
        data = json.loads(data)
    if set(data) != DATA:
        problems.append(f"data members {sorted(data)}")
    return kind, problems


def main(path):
    kinds = set()
    failed = 0
    with open(path, encoding="utf-8") as samples:
        for n, line in enumerate(samples, 1):
            kind, problems = check(json.loads(line))
            kinds.add(kind)
            if problems:
                failed += 1
                print(f"{path}:{n}: {'; '.join(problems)}", file=sys.stderr)
    if failed or not kinds:
        print(f"{failed} of the event documents do not read as CloudEvents", file=sys.stderr)
        return 1
    print(f"every event document parses as CloudEvents 1.0; types: {', '.join(sorted(kinds))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
