"""Smoke test of a Python client generated from docs/openapi.json (openapi-python-client),
against a live node: run by tests/api/client.rs with PYTHONPATH at the generated package.

Usage: client_smoke.py BASE_URL TOKEN DOCUMENT_ID
Every call goes through the generated functions and models, so a schema that does not match
what the node answers fails here (the generated parsers raise, or give the wrong model).
"""
import enum
import json
import sys

import entrepot_node_api_client as c
from entrepot_node_api_client import models
from entrepot_node_api_client.api.documents import get_one, list_, publish
from entrepot_node_api_client.api.hs import tracker
from entrepot_node_api_client.api.network import feeds
from entrepot_node_api_client.api.operations import healthz

base, token, doc_id = sys.argv[1], sys.argv[2], sys.argv[3]
client = c.Client(base_url=base, raise_on_unexpected_status=True)
authed = c.AuthenticatedClient(base_url=base, token=token, raise_on_unexpected_status=True)


def type_enum(prefix):
    """The enum the generator made for one operation's `type` parameter."""
    for name in dir(models):
        cls = getattr(models, name)
        if name.startswith(prefix) and isinstance(cls, type) and issubclass(cls, enum.Enum):
            if "classification.opinion" in [m.value for m in cls]:
                return cls("classification.opinion")
    raise SystemExit(f"no generated enum {prefix}* with classification.opinion: the type parameter is not an enum")


r = healthz.sync_detailed(client=client)
assert r.status_code == 200, r

page = list_.sync_detailed(client=client, type_=type_enum("List"), limit=1000)
assert r.status_code == 200
assert isinstance(page.parsed, models.DocumentList), page.parsed
ids = [d.id for d in page.parsed.documents]
assert doc_id in ids, ids

one = get_one.sync_detailed(client=client, id=doc_id)
assert isinstance(one.parsed, models.DocumentView), one.parsed
assert one.parsed.verification.valid, one.parsed.verification

missing = get_one.sync_detailed(client=client, id="ab" * 32)
assert missing.status_code == 404 and isinstance(missing.parsed, models.ErrorBody), missing
assert missing.parsed.error.code == "not_found"

heads = feeds.sync_detailed(client=client)
assert isinstance(heads.parsed, models.FeedList), heads.parsed

hs = tracker.sync_detailed(client=client, edition="HS2022", code="8806.22")
assert hs.status_code == 200, hs

body = models.PublishBody.from_dict(json.loads(sys.stdin.read()))
published = publish.sync_detailed(client=authed, body=body, type_=type_enum("Publish"))
assert published.status_code == 201 and isinstance(published.parsed, models.PublishedView), published
refused = publish.sync_detailed(client=client, body=body, type_=type_enum("Publish"))
assert refused.status_code == 401 and refused.parsed.error.code == "unauthorized", refused

print("generated client smoke test: 8 calls ok")
