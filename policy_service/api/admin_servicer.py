"""AdminService: one servicer assembled from per-domain RPC groups."""

from __future__ import annotations

from policy_service._generated.monomcp.policy.v1 import admin_pb2_grpc
from policy_service.api.approval_rpcs import ApprovalRpcs
from policy_service.api.audit_rpcs import AuditRpcs
from policy_service.api.directory_rpcs import DirectoryRpcs
from policy_service.api.notification_rpcs import NotificationRpcs
from policy_service.api.people_rpcs import PeopleRpcs
from policy_service.api.policy_rpcs import PolicyRpcs
from policy_service.api.session_rpcs import SessionRpcs
from policy_service.api.toolkit_rpcs import ToolkitRpcs


class AdminServicer(
    DirectoryRpcs,
    ToolkitRpcs,
    ApprovalRpcs,
    AuditRpcs,
    SessionRpcs,
    PeopleRpcs,
    PolicyRpcs,
    NotificationRpcs,
    admin_pb2_grpc.AdminServiceServicer,
):
    pass
