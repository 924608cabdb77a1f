"""Digest links ↔ their protobuf form: the servicer exports and checks them, the CLI turns an
export into JSON Lines and back, and both must agree on every field."""

from __future__ import annotations

import json

from policy_service._generated.monomcp.policy.v1 import admin_pb2
from policy_service.audit.chain import Link


def to_message(link: Link) -> admin_pb2.AuditDigest:
    data = link.to_json()
    data["row_hashes_json"] = json.dumps(data.pop("row_hashes"))
    return admin_pb2.AuditDigest(**data)


def from_message(message: admin_pb2.AuditDigest) -> Link:
    return Link.from_fields(message, message.row_hashes_json)
