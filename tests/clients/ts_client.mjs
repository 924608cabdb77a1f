// A TypeScript-SDK client for the e2e tests: connects over streamable HTTP with a bearer,
// runs one action and prints one JSON line. Usage: node ts_client.mjs URL TOKEN ACTION JSON
//   call   {"name", "arguments"}           -> {"result"} or {"error": {"code", "message"}}
//   stream {"name", "arguments", "after"}  -> {"messages": [{type, status?, result?, error?}]}
//   subscribe {"uri", "name", "arguments"} -> {"updated": [uri...], "logs": [data...]}: subscribes to
//     `uri`, then calls the tool until a resources/updated arrives on the SDK's own GET stream
// For `stream`, once the task is created the script prints {"taskId"} on stderr so the
// test can approve it, and waits up to `timeoutMs` for the stream to end (then it ends with an error).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";

const [url, token, action, json] = process.argv.slice(2);
const params = JSON.parse(json);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "ts-e2e", version: "1.0.0" });
const plainError = (e) => ({ code: e?.code ?? null, message: String(e?.message ?? e) });

async function main() {
  await client.connect(transport);
  await client.listTools(); // the SDK validates results against the output schemas it lists
  if (action === "call") {
    try {
      return { result: await client.callTool({ name: params.name, arguments: params.arguments }) };
    } catch (e) {
      return { error: plainError(e) };
    }
  }
  if (action === "stream") {
    const messages = [];
    const stream = client.experimental.tasks.callToolStream(
      { name: params.name, arguments: params.arguments },
      undefined,
      // `timeout` bounds each request; the signal bounds the whole stream (it polls until a terminal status).
      { task: { ttl: 600000 }, timeout: params.timeoutMs ?? 60000, signal: AbortSignal.timeout(params.timeoutMs ?? 60000) },
    );
    for await (const message of stream) {
      const entry = { type: message.type };
      if (message.task) {
        entry.status = message.task.status;
        entry.statusMessage = message.task.statusMessage;
      }
      if (message.type === "taskCreated") process.stderr.write(JSON.stringify({ taskId: message.task.taskId }) + "\n");
      if (message.result) entry.result = message.result;
      if (message.error) entry.error = plainError(message.error);
      messages.push(entry);
    }
    return { messages };
  }
  if (action === "subscribe") {
    const updated = [];
    const logs = [];
    let arrived = () => {};
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updated.push(n.params.uri);
      arrived();
    });
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => logs.push(n.params.data));
    await client.subscribeResource({ uri: params.uri });
    for (let i = 0; i < 200 && updated.length === 0; i++) {
      // The backend drops what it sends before the gateway's own stream to it is open: ask again.
      const waited = new Promise((resolve) => {
        arrived = resolve;
        setTimeout(resolve, 100);
      });
      await client.callTool({ name: params.name, arguments: params.arguments });
      await waited;
    }
    return { updated, logs };
  }
  throw new Error(`unknown action ${action}`);
}

main()
  .then(async (out) => {
    process.stdout.write(JSON.stringify(out) + "\n");
    await client.close();
    process.exit(0);
  })
  .catch((e) => {
    process.stdout.write(JSON.stringify({ error: plainError(e) }) + "\n");
    process.exit(1);
  });
