"""PolicyClient's AdminService methods (orgs, keys, toolkits, permissions, approvals, audit,
people, notifications, policy files): each is one RPC with the caller's own credential."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from policy_service import errors
from policy_service._generated.monomcp.policy.v1 import admin_pb2, admin_pb2_grpc, types_pb2
from policy_service.rpc_channel import OnChannel
from policy_service.status_codes import error_for
from policy_service.toolkits.stdio_backend import StdioSpec
from policy_service.wire_enums import APPROVAL_STATUSES, PERMISSIONS


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


class AdminRpcs(OnChannel):
    @property
    def _admin(self) -> admin_pb2_grpc.AdminServiceStub:
        return self.channel.stub(admin_pb2_grpc.AdminServiceStub)

    async def whoami(self) -> types_pb2.Principal:
        response: admin_pb2.WhoAmIResponse = await self._call(self._admin.WhoAmI, admin_pb2.WhoAmIRequest(), True)
        return response.principal

    async def create_org(self, slug: str, name: str = "") -> admin_pb2.Org:
        return await self._call(self._admin.CreateOrg, admin_pb2.CreateOrgRequest(slug=slug, name=name), True)

    async def list_orgs(self) -> list[admin_pb2.Org]:
        return list((await self._call(self._admin.ListOrgs, admin_pb2.ListOrgsRequest(), True)).orgs)

    async def create_role(self, org: str, name: str) -> admin_pb2.Role:
        return await self._call(self._admin.CreateRole, admin_pb2.CreateRoleRequest(org_slug=org, name=name), True)

    async def list_roles(self, org: str = "") -> list[admin_pb2.Role]:
        return list((await self._call(self._admin.ListRoles, admin_pb2.ListRolesRequest(org_slug=org), True)).roles)

    async def add_member(self, org: str, email: str, role: str) -> admin_pb2.Member:
        return await self._call(
            self._admin.AddMember, admin_pb2.AddMemberRequest(org_slug=org, email=email, role=role), True
        )

    async def create_api_key(
        self, org: str, name: str, role: str, ttl_seconds: int = 0, owner: str = ""
    ) -> admin_pb2.CreateApiKeyResponse:
        request = admin_pb2.CreateApiKeyRequest(
            org_slug=org, name=name, role=role, ttl_seconds=ttl_seconds, owner=owner
        )
        return await self._call(self._admin.CreateApiKey, request, True)

    async def list_api_keys(self, org: str = "") -> list[admin_pb2.ApiKey]:
        return list((await self._call(self._admin.ListApiKeys, admin_pb2.ListApiKeysRequest(org_slug=org), True)).keys)

    async def revoke_api_key(self, org: str, key_id: str) -> admin_pb2.ApiKey:
        return await self._call(self._admin.RevokeApiKey, admin_pb2.RevokeApiKeyRequest(org_slug=org, id=key_id), True)

    async def upsert_toolkit(
        self,
        org: str,
        slug: str,
        *,
        name: str = "",
        description: str = "",
        visibility: str = "",
        backend_url: str = "",
        backend_headers: dict[str, str] | None = None,
        backend_timeout_seconds: float = 0.0,
        new_tool_permission: str = "",
        backend_stdio: StdioSpec | None = None,
    ) -> admin_pb2.Toolkit:
        """`backend_stdio` (operator only) makes the backend a command the gateway runs."""
        if new_tool_permission and new_tool_permission not in PERMISSIONS:
            raise errors.InvalidArgument(f"unknown permission {new_tool_permission!r}", "BAD_PERMISSION")
        request = admin_pb2.UpsertToolkitRequest(
            org_slug=org,
            slug=slug,
            name=name,
            description=description,
            visibility=visibility,
            backend_url=backend_url,
            backend_headers=backend_headers or {},
            backend_timeout_seconds=backend_timeout_seconds,
            new_tool_permission=PERMISSIONS.get(new_tool_permission, types_pb2.PERMISSION_UNSPECIFIED),
        )
        if backend_stdio is not None:
            request.backend_stdio.CopyFrom(
                admin_pb2.StdioBackend(
                    command=backend_stdio.command,
                    args=list(backend_stdio.args),
                    env=backend_stdio.env,
                    cwd=backend_stdio.cwd,
                    memory_limit_mb=backend_stdio.memory_limit_mb,
                    cpu_limit_seconds=backend_stdio.cpu_limit_seconds,
                    pool_size=backend_stdio.pool_size,
                )
            )
        return await self._call(self._admin.UpsertToolkit, request, True)

    async def list_toolkits(self, org: str = "", include_public: bool = False) -> list[admin_pb2.Toolkit]:
        request = admin_pb2.ListToolkitsRequest(org_slug=org, include_public=include_public)
        return list((await self._call(self._admin.ListToolkits, request, True)).toolkits)

    async def get_toolkit(self, org: str, slug: str) -> admin_pb2.Toolkit:
        return await self._call(self._admin.GetToolkit, admin_pb2.GetToolkitRequest(org_slug=org, slug=slug), True)

    async def sync_tools(
        self, org: str, toolkit: str, tools: list[dict[str, Any]], prune: bool = False, kinds: Sequence[str] = ()
    ) -> admin_pb2.SyncToolsResponse:
        """Each spec may name its `kind` (default tool); `kinds` are the kinds this sync covers."""
        specs = [
            admin_pb2.CatalogueTool(
                name=t["name"],
                title=t.get("title", ""),
                description=t.get("description", ""),
                input_schema_json=t.get("input_schema_json", ""),
                output_schema_json=t.get("output_schema_json", ""),
                annotations_json=t.get("annotations_json", ""),
                default_permission=PERMISSIONS.get(t.get("default_permission", ""), types_pb2.PERMISSION_UNSPECIFIED),
                kind=t.get("kind", ""),
                spec_json=t.get("spec_json", ""),
            )
            for t in tools
        ]
        request = admin_pb2.SyncToolsRequest(
            org_slug=org, toolkit_slug=toolkit, tools=specs, prune=prune, kinds=list(kinds)
        )
        return await self._call(self._admin.SyncTools, request, True)

    async def list_catalogue(self, org: str, toolkit: str, kind: str = "") -> list[admin_pb2.CatalogueTool]:
        """Tools, or the items of `kind` ("*" for every kind)."""
        request = admin_pb2.ListCatalogueRequest(org_slug=org, toolkit_slug=toolkit, kind=kind)
        return list((await self._call(self._admin.ListCatalogue, request, True)).tools)

    async def set_tool_default(
        self, org: str, toolkit: str, tool: str, permission: str, *, kind: str = ""
    ) -> admin_pb2.CatalogueTool:
        request = admin_pb2.SetToolDefaultRequest(
            kind=kind,
            org_slug=org,
            toolkit_slug=toolkit,
            tool=tool,
            permission=PERMISSIONS.get(permission, types_pb2.PERMISSION_UNSPECIFIED),
        )
        return await self._call(self._admin.SetToolDefault, request, True)

    async def set_org_default(
        self, toolkit_org: str, toolkit: str, tool: str, permission: str, org: str = "", *, kind: str = ""
    ) -> admin_pb2.PermissionRule:
        request = admin_pb2.SetOrgDefaultRequest(
            kind=kind,
            org_slug=org,
            toolkit_org_slug=toolkit_org,
            toolkit_slug=toolkit,
            tool=tool,
            permission=PERMISSIONS.get(permission, types_pb2.PERMISSION_UNSPECIFIED),
        )
        return await self._call(self._admin.SetOrgDefault, request, True)

    async def clear_org_default(
        self, toolkit_org: str, toolkit: str, tool: str, org: str = "", *, kind: str = ""
    ) -> bool:
        request = admin_pb2.ClearOrgDefaultRequest(
            org_slug=org, toolkit_org_slug=toolkit_org, toolkit_slug=toolkit, tool=tool, kind=kind
        )
        response: admin_pb2.ClearResponse = await self._call(self._admin.ClearOrgDefault, request, True)
        return response.removed

    async def set_role_override(
        self, role: str, toolkit_org: str, toolkit: str, tool: str, permission: str, org: str = "", *, kind: str = ""
    ) -> admin_pb2.PermissionRule:
        request = admin_pb2.SetRoleOverrideRequest(
            kind=kind,
            org_slug=org,
            role=role,
            toolkit_org_slug=toolkit_org,
            toolkit_slug=toolkit,
            tool=tool,
            permission=PERMISSIONS.get(permission, types_pb2.PERMISSION_UNSPECIFIED),
        )
        return await self._call(self._admin.SetRoleOverride, request, True)

    async def clear_role_override(
        self, role: str, toolkit_org: str, toolkit: str, tool: str, org: str = "", *, kind: str = ""
    ) -> bool:
        request = admin_pb2.ClearRoleOverrideRequest(
            org_slug=org, role=role, toolkit_org_slug=toolkit_org, toolkit_slug=toolkit, tool=tool, kind=kind
        )
        response: admin_pb2.ClearResponse = await self._call(self._admin.ClearRoleOverride, request, True)
        return response.removed

    async def list_permission_rules(self, org: str = "") -> list[admin_pb2.PermissionRule]:
        request = admin_pb2.ListPermissionRulesRequest(org_slug=org)
        return list((await self._call(self._admin.ListPermissionRules, request, True)).rules)

    async def list_approvals(
        self, org: str = "", status: str = "", page_size: int = 50, page_token: str = ""
    ) -> admin_pb2.ListApprovalsResponse:
        request = admin_pb2.ListApprovalsRequest(
            org_slug=org,
            status=APPROVAL_STATUSES.get(status, types_pb2.APPROVAL_STATUS_UNSPECIFIED),
            page_size=page_size,
            page_token=page_token,
        )
        return await self._call(self._admin.ListApprovals, request, True)

    async def get_approval(self, approval_id: str) -> types_pb2.Approval:
        return await self._call(self._admin.GetApproval, admin_pb2.GetApprovalRequest(id=approval_id), True)

    async def decide_approval(self, approval_id: str, approve: bool, reason: str = "") -> types_pb2.Approval:
        request = admin_pb2.DecideApprovalRequest(id=approval_id, approve=approve, reason=reason)
        return await self._call(self._admin.DecideApproval, request, True)

    async def watch_approvals(self, org: str = "") -> AsyncIterator[types_pb2.Approval]:
        call = self._admin.WatchApprovals(
            admin_pb2.WatchApprovalsRequest(org_slug=org), metadata=self.channel.admin_metadata
        )
        try:
            async for approval in call:
                yield approval
        except grpc.aio.AioRpcError as exc:
            kind = error_for(exc.code())
            raise kind(exc.details() or exc.code().name) from exc
        finally:
            call.cancel()

    async def query_audit(
        self,
        org: str = "",
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        toolkit: str = "",
        tool: str = "",
        actor_id: str = "",
        status: str = "",
        approval_id: str = "",
        call_id: str = "",
        page_size: int = 50,
        page_token: str = "",
        source: str = "",
    ) -> admin_pb2.QueryAuditResponse:
        request = admin_pb2.QueryAuditRequest(
            org_slug=org,
            since=timestamp(since),
            until=timestamp(until),
            toolkit_slug=toolkit,
            tool=tool,
            actor_id=actor_id,
            status=status,
            approval_id=approval_id,
            call_id=call_id,
            page_size=page_size,
            page_token=page_token,
            source=source,
        )
        return await self._call(self._admin.QueryAudit, request, True)

    async def verify_audit(
        self, known_digests: list[admin_pb2.AuditDigest] | None = None
    ) -> admin_pb2.VerifyAuditResponse:
        request = admin_pb2.VerifyAuditRequest(known_digests=known_digests or [])
        return await self._call(self._admin.VerifyAudit, request, True)

    async def export_audit_digests(self) -> list[admin_pb2.AuditDigest]:
        response = await self._call(self._admin.ExportAuditDigests, admin_pb2.ExportAuditDigestsRequest(), True)
        return list(response.digests)

    async def apply_audit_retention(self, before: datetime) -> admin_pb2.ApplyAuditRetentionResponse:
        stamp = Timestamp()
        stamp.FromDatetime(before)
        request = admin_pb2.ApplyAuditRetentionRequest(before=stamp)
        return await self._call(self._admin.ApplyAuditRetention, request, True)

    async def prepare_audit_partitions(self, months_ahead: int = 0) -> admin_pb2.PrepareAuditPartitionsResponse:
        request = admin_pb2.PrepareAuditPartitionsRequest(months_ahead=months_ahead)
        return await self._call(self._admin.PrepareAuditPartitions, request, True)

    # --- service identities (operator) ----------------------------------------------
    async def create_service_identity(self, name: str, scopes: list[str]) -> admin_pb2.CreateServiceIdentityResponse:
        request = admin_pb2.CreateServiceIdentityRequest(name=name, scopes=scopes)
        return await self._call(self._admin.CreateServiceIdentity, request, True)

    async def list_service_identities(self) -> list[admin_pb2.ServiceIdentity]:
        request = admin_pb2.ListServiceIdentitiesRequest()
        return list((await self._call(self._admin.ListServiceIdentities, request, True)).identities)

    async def revoke_service_identity(self, id_or_name: str) -> admin_pb2.ServiceIdentity:
        request = admin_pb2.RevokeServiceIdentityRequest(id=id_or_name)
        return await self._call(self._admin.RevokeServiceIdentity, request, True)

    # --- console sessions (the credential is the admin key/JWT, or the session itself) ---
    async def create_console_session(self, ttl_seconds: int = 0) -> admin_pb2.CreateConsoleSessionResponse:
        request = admin_pb2.CreateConsoleSessionRequest(ttl_seconds=ttl_seconds)
        return await self._call(self._admin.CreateConsoleSession, request, admin=True)

    async def end_console_session(self) -> None:
        await self._call(self._admin.EndConsoleSession, admin_pb2.EndConsoleSessionRequest(), admin=True)

    # --- people and their sign-in ------------------------------------------------------
    async def create_person(
        self, org: str, email: str, display_name: str = "", role: str = "member", password: str = ""
    ) -> admin_pb2.CreatePersonResponse:
        request = admin_pb2.CreatePersonRequest(
            org_slug=org, email=email, display_name=display_name, role=role, password=password
        )
        return await self._call(self._admin.CreatePerson, request, admin=True)

    async def list_people(self, org: str = "") -> list[admin_pb2.Person]:
        response = await self._call(self._admin.ListPeople, admin_pb2.ListPeopleRequest(org_slug=org), admin=True)
        return list(response.people)

    async def set_person_disabled(self, org: str, person: str, disabled: bool) -> admin_pb2.Person:
        request = admin_pb2.SetPersonDisabledRequest(org_slug=org, person=person, disabled=disabled)
        return await self._call(self._admin.SetPersonDisabled, request, admin=True)

    async def reset_password(self, org: str, person: str, new_password: str = "") -> admin_pb2.ResetPasswordResponse:
        request = admin_pb2.ResetPasswordRequest(org_slug=org, person=person, new_password=new_password)
        return await self._call(self._admin.ResetPassword, request, admin=True)

    async def change_password(self, current_password: str, new_password: str) -> None:
        request = admin_pb2.ChangePasswordRequest(current_password=current_password, new_password=new_password)
        await self._call(self._admin.ChangePassword, request, admin=True)

    async def login(
        self, email: str, password: str, org: str, client_address: str = "", user_agent: str = ""
    ) -> admin_pb2.LoginResponse:
        """Sign in with a password (no credential needed on this client)."""
        request = admin_pb2.LoginRequest(
            email=email, password=password, org_slug=org, client_address=client_address, user_agent=user_agent
        )
        return await self._call(self._admin.Login, request, sign_in=True)

    async def refresh(
        self, refresh_token: str, client_address: str = "", user_agent: str = ""
    ) -> admin_pb2.LoginResponse:
        request = admin_pb2.RefreshRequest(
            refresh_token=refresh_token, client_address=client_address, user_agent=user_agent
        )
        return await self._call(self._admin.Refresh, request, sign_in=True)

    async def logout(self, refresh_token: str = "") -> None:
        """Revoke the sign-in of `refresh_token` and/or of this client's access token."""
        await self._call(self._admin.Logout, admin_pb2.LogoutRequest(refresh_token=refresh_token), admin=True)

    async def create_password_console_session(
        self, email: str, password: str, org: str, client_address: str = "", user_agent: str = "", ttl_seconds: int = 0
    ) -> admin_pb2.CreateConsoleSessionResponse:
        request = admin_pb2.PasswordConsoleSessionRequest(
            email=email,
            password=password,
            org_slug=org,
            client_address=client_address,
            user_agent=user_agent,
            ttl_seconds=ttl_seconds,
        )
        return await self._call(self._admin.CreatePasswordConsoleSession, request, sign_in=True)

    # Permissions as code (ADR 0021).
    async def export_policy(self, org: str = "") -> admin_pb2.PolicyFile:
        return await self._call(self._admin.ExportPolicy, admin_pb2.ExportPolicyRequest(org_slug=org), admin=True)

    async def apply_policy(self, yaml_text: str, org: str = "", dry_run: bool = False) -> admin_pb2.ApplyPolicyResponse:
        """Check and apply a policy file (`dry_run`: only say what would change)."""
        request = admin_pb2.ApplyPolicyRequest(org_slug=org, yaml=yaml_text, dry_run=dry_run)
        return await self._call(self._admin.ApplyPolicy, request, admin=True)

    # --- approval notifications -----------------------------------------------------
    async def create_notification_channel(
        self, org: str, name: str, kind: str, target: str
    ) -> admin_pb2.CreateNotificationChannelResponse:
        request = admin_pb2.CreateNotificationChannelRequest(org_slug=org, name=name, kind=kind, target=target)
        return await self._call(self._admin.CreateNotificationChannel, request, admin=True)

    async def list_notification_channels(self, org: str = "") -> list[admin_pb2.NotificationChannel]:
        request = admin_pb2.ListNotificationChannelsRequest(org_slug=org)
        return list((await self._call(self._admin.ListNotificationChannels, request, admin=True)).channels)

    async def delete_notification_channel(self, org: str, name: str) -> admin_pb2.NotificationChannel:
        request = admin_pb2.DeleteNotificationChannelRequest(org_slug=org, name=name)
        return await self._call(self._admin.DeleteNotificationChannel, request, admin=True)

    async def list_notification_deliveries(
        self, org: str = "", channel: str = "", page_size: int = 50
    ) -> list[admin_pb2.NotificationDelivery]:
        request = admin_pb2.ListNotificationDeliveriesRequest(org_slug=org, channel=channel, page_size=page_size)
        return list((await self._call(self._admin.ListNotificationDeliveries, request, admin=True)).deliveries)

    async def set_notification_channel_disabled(
        self, org: str, name: str, disabled: bool
    ) -> admin_pb2.NotificationChannel:
        request = admin_pb2.SetNotificationChannelDisabledRequest(org_slug=org, name=name, disabled=disabled)
        return await self._call(self._admin.SetNotificationChannelDisabled, request, admin=True)

    async def test_notification_channel(self, org: str, name: str) -> admin_pb2.NotificationDelivery:
        request = admin_pb2.TestNotificationChannelRequest(org_slug=org, name=name)
        return await self._call(self._admin.TestNotificationChannel, request, admin=True)
