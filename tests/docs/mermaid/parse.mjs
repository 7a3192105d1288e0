// Parses Mermaid diagrams with Mermaid's own parser, offline, and prints what each one holds.
// stdin: a JSON array of diagram texts. stdout: a JSON array, one entry per diagram:
//   {"ok": true, "type": "stateDiagram", "states": {id: parent composite state or ""},
//    "transitions": [[from, to, label], ...]}
//   {"ok": true, "type": "flowchart-v2", "nodes": {id: label}, "edges": [[from, to, label], ...],
//    "subgraphs": {id: label}}
//   {"ok": false, "error": "Parse error on line 4: ..."}
// Mermaid sanitises labels with DOMPurify, which needs a DOM: jsdom gives it one.
import { JSDOM } from "jsdom";

const { window } = new JSDOM("");
globalThis.window = window;
globalThis.document = window.document;
const { default: mermaid } = await import("mermaid");

function describe(diagram) {
  const db = diagram.db;
  if (diagram.type.startsWith("state")) {
    const states = Object.fromEntries([...db.getStates().keys()].map((id) => [id, ""]));
    for (const [id, state] of db.getStates()) {
      for (const child of state.doc ?? []) if (child.stmt === "state") states[child.id] = id;
    }
    return {
      states,
      transitions: db.getRelations().map((r) => [r.id1, r.id2, r.relationTitle ?? ""]),
    };
  }
  if (diagram.type.startsWith("flowchart")) {
    return {
      nodes: Object.fromEntries([...db.getVertices().values()].map((v) => [v.id, v.text ?? ""])),
      edges: db.getEdges().map((e) => [e.start, e.end, e.text ?? ""]),
      subgraphs: Object.fromEntries(db.getSubGraphs().map((s) => [s.id, s.title ?? ""])),
    };
  }
  return {};
}

async function parseOne(text) {
  try {
    // parse() registers the diagram types and throws on a syntax error; the diagram then gives its db.
    await mermaid.parse(text);
    const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
    return { ok: true, type: diagram.type, ...describe(diagram) };
  } catch (error) {
    return { ok: false, error: String(error?.message ?? error) };
  }
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = [];
for (const text of JSON.parse(input)) results.push(await parseOne(text));
process.stdout.write(JSON.stringify(results));
