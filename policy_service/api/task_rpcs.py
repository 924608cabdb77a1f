"""TaskService: approval tasks for the front's tasks/* methods. Translation only; the
domain rules live in `policy_service.approvals.tasks`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_service._generated.monomcp.policy.v1 import tasks_pb2, tasks_pb2_grpc
from policy_service.api import convert
from policy_service.api.errors import translated
from policy_service.api.metadata import service_caller
from policy_service.approvals import tasks
from policy_service.audit.writer import AuditLog
from policy_service.errors import InvalidArgument
from policy_service.gate import Gate
from policy_service.identity.principal import Principal
from policy_service.identity.services import Scope, ServiceDirectory
from policy_service.storage.models import AuditRequestLog

_PAGE = 100


def _state(record: tasks.TaskRecord, include_result: bool = False) -> tasks_pb2.TaskState:
    row = record.row
    return tasks_pb2.TaskState(
        task_id=row.id,
        status=row.status,
        approval=convert.approval(record.approval),
        created_at=convert.ts(row.created_at),
        updated_at=convert.ts(row.updated_at),
        expires_at=convert.ts(row.expires_at),
        result_status=row.result_status,
        result_json=row.result_json if include_result else "",
        result_call_id=row.result_call_id,
        consumer_status=record.consumer_status,
    )


class TaskRpcs(tasks_pb2_grpc.TaskServiceServicer):
    def __init__(
        self,
        gate: Gate,
        services: ServiceDirectory,
        sessions: async_sessionmaker[AsyncSession],
        audit: AuditLog,
    ) -> None:
        self._gate = gate
        self._services = services
        self._sessions = sessions
        self._audit = audit

    async def _owner(self, credential: str, org_slug: str, toolkit_slug: str) -> tuple[Principal, str]:
        """The caller and the id of the toolkit it may see (NOT_FOUND otherwise)."""
        principal = await self._gate.authenticator.authenticate(credential)
        view = await self._gate.catalogue.view(principal, org_slug, toolkit_slug)
        return principal, view.toolkit_id

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        async with self._gate.guard(), self._sessions() as session, session.begin():
            yield session

    @translated
    async def CreateTask(
        self, request: tasks_pb2.CreateTaskRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.TaskState:
        await service_caller(context, self._services, Scope.EXECUTE)
        principal, toolkit_id = await self._owner(request.credential, request.org_slug, request.toolkit_slug)
        async with self._writing() as session:
            record = await tasks.create(session, principal, toolkit_id, request.approval_id, request.ttl_ms)
            return _state(record)

    @translated
    async def GetTask(
        self, request: tasks_pb2.GetTaskRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.TaskState:
        await service_caller(context, self._services, Scope.READ)
        principal, toolkit_id = await self._owner(request.credential, request.org_slug, request.toolkit_slug)
        async with self._writing() as session:  # writes only when the approval just expired
            return _state(await tasks.get(session, principal, toolkit_id, request.task_id), request.include_result)

    @translated
    async def ListTasks(
        self, request: tasks_pb2.ListTasksRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.ListTasksResponse:
        await service_caller(context, self._services, Scope.READ)
        principal, toolkit_id = await self._owner(request.credential, request.org_slug, request.toolkit_slug)
        limit = min(max(request.page_size or _PAGE, 1), _PAGE)
        async with self._writing() as session:
            records, cursor = await tasks.list_owned(session, principal, toolkit_id, request.cursor, limit)
            return tasks_pb2.ListTasksResponse(tasks=[_state(r) for r in records], next_cursor=cursor)

    @translated
    async def CancelTask(
        self, request: tasks_pb2.CancelTaskRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.TaskState:
        await service_caller(context, self._services, Scope.EXECUTE)
        principal, toolkit_id = await self._owner(request.credential, request.org_slug, request.toolkit_slug)
        async with self._writing() as session:
            state = _state(await tasks.cancel(session, principal, toolkit_id, request.task_id))
        self._gate.on_approval_change()
        return state

    @translated
    async def CompleteTaskCall(
        self, request: tasks_pb2.CompleteTaskCallRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.CompleteTaskCallResponse:
        """Result first, completion second: a task reads `completed` only once both exist, so
        the rule that a result reaches the client after its completion is durable holds."""
        service = await service_caller(context, self._services, Scope.EXECUTE)
        async with self._sessions() as session:
            started = (
                await session.execute(
                    select(AuditRequestLog.service_id, AuditRequestLog.approval_id).where(
                        AuditRequestLog.call_id == request.call_id, AuditRequestLog.status == "started"
                    )
                )
            ).first()
        if started is not None and started.service_id == service.id and started.approval_id:
            async with self._writing() as session:
                await tasks.keep_result(
                    session, started.approval_id, request.call_id, request.status, request.response_json
                )
        await self._gate.complete(
            service, request.call_id, request.status, request.response_json, request.error, request.duration_ms
        )
        return tasks_pb2.CompleteTaskCallResponse()

    @translated
    async def SettleTask(
        self, request: tasks_pb2.SettleTaskRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.TaskState:
        await service_caller(context, self._services, Scope.EXECUTE)
        if len(request.result_json.encode()) > tasks.MAX_RESULT_BYTES:
            raise InvalidArgument("result too large", "RESULT_SIZE")
        principal, toolkit_id = await self._owner(request.credential, request.org_slug, request.toolkit_slug)
        async with self._writing() as session:
            return _state(await tasks.settle(session, principal, toolkit_id, request.task_id, request.result_json))
