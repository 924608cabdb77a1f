// The official TypeScript SDK client against a gateway endpoint with a bearer key:
// lists tools, calls one, reads a resource and gets a prompt, and prints one JSON line.
// Usage: node ts_sdk_client.mjs URL TOKEN TOOL ARGUMENTS_JSON RESOURCE_URI PROMPT
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, token, tool, args, resourceUri, prompt] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "monomcp-interop-ts", version: "1.0.0" });
await client.connect(transport);
const tools = await client.listTools();
const called = await client.callTool({ name: tool, arguments: JSON.parse(args) });
const resource = await client.readResource({ uri: resourceUri });
const got = await client.getPrompt({ name: prompt });
console.log(
  JSON.stringify({
    server: client.getServerVersion(),
    tools: tools.tools.map((t) => t.name),
    called,
    resource: resource.contents[0],
    prompt: got.messages[0],
  }),
);
await client.close();
