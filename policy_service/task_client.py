"""PolicyClient's TaskService methods (approval tasks), called with the service identity."""

from __future__ import annotations

from policy_service._generated.monomcp.policy.v1 import tasks_pb2, tasks_pb2_grpc
from policy_service.rpc_channel import OnChannel


class TaskRpcs(OnChannel):
    @property
    def _tasks(self) -> tasks_pb2_grpc.TaskServiceStub:
        return self.channel.stub(tasks_pb2_grpc.TaskServiceStub)

    async def create_task(
        self, credential: str, org: str, toolkit: str, approval_id: str, ttl_ms: int = 0
    ) -> tasks_pb2.TaskState:
        request = tasks_pb2.CreateTaskRequest(
            credential=credential, org_slug=org, toolkit_slug=toolkit, approval_id=approval_id, ttl_ms=ttl_ms
        )
        return await self._call(self._tasks.CreateTask, request)

    async def get_task(
        self, credential: str, org: str, toolkit: str, task_id: str, include_result: bool = False
    ) -> tasks_pb2.TaskState:
        request = tasks_pb2.GetTaskRequest(
            credential=credential, org_slug=org, toolkit_slug=toolkit, task_id=task_id, include_result=include_result
        )
        return await self._call(self._tasks.GetTask, request)

    async def list_tasks(
        self, credential: str, org: str, toolkit: str, cursor: str = "", page_size: int = 0
    ) -> tasks_pb2.ListTasksResponse:
        request = tasks_pb2.ListTasksRequest(
            credential=credential, org_slug=org, toolkit_slug=toolkit, cursor=cursor, page_size=page_size
        )
        return await self._call(self._tasks.ListTasks, request)

    async def cancel_task(self, credential: str, org: str, toolkit: str, task_id: str) -> tasks_pb2.TaskState:
        request = tasks_pb2.CancelTaskRequest(
            credential=credential, org_slug=org, toolkit_slug=toolkit, task_id=task_id
        )
        return await self._call(self._tasks.CancelTask, request)

    async def complete_task_call(
        self, call_id: str, status: str, response_json: str = "", error: str = "", duration_ms: float = 0.0
    ) -> None:
        """CompleteToolCall for a call that consumed an approval: its tasks keep the result."""
        request = tasks_pb2.CompleteTaskCallRequest(
            call_id=call_id, status=status, response_json=response_json, error=error, duration_ms=duration_ms
        )
        await self._call(self._tasks.CompleteTaskCall, request)

    async def settle_task(
        self, credential: str, org: str, toolkit: str, task_id: str, result_json: str
    ) -> tasks_pb2.TaskState:
        request = tasks_pb2.SettleTaskRequest(
            credential=credential, org_slug=org, toolkit_slug=toolkit, task_id=task_id, result_json=result_json
        )
        return await self._call(self._tasks.SettleTask, request)
