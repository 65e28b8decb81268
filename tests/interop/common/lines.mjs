// The harness protocol: the Python test writes one JSON command per stdin line
// ({"id": 1, "cmd": "dial", ...}); the script answers {"reply": 1, "ok": true, ...} and reports
// events as {"event": "..."} lines on stdout. Logs go to stderr. No npm dependencies here.
import { createInterface } from "node:readline";

export function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

export function serveCommands(handlers) {
  const rl = createInterface({ input: process.stdin });
  rl.on("line", async (line) => {
    if (!line.trim()) return;
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (err) {
      emit({ event: "error", error: `bad command line: ${err}` });
      return;
    }
    const handler = handlers[cmd.cmd];
    if (!handler) {
      emit({ reply: cmd.id, ok: false, error: `unknown command ${cmd.cmd}` });
      return;
    }
    try {
      const result = (await handler(cmd)) ?? {};
      emit({ reply: cmd.id, ok: true, ...result });
    } catch (err) {
      emit({ reply: cmd.id, ok: false, error: String(err?.stack ?? err) });
    }
  });
  rl.on("close", () => handlers.stop?.({}).finally(() => process.exit(0)));
}

export function config() {
  return JSON.parse(process.argv[2] ?? "{}");
}

// The connection events every stack reports the same way.
export function reportConnections(libp2p) {
  libp2p.addEventListener("connection:open", (evt) => {
    const c = evt.detail;
    emit({
      event: "connection:open",
      peer: c.remotePeer.toString(),
      direction: c.direction,
      muxer: c.multiplexer,
      encryption: c.encryption,
      addr: c.remoteAddr.toString(),
    });
  });
  libp2p.addEventListener("connection:close", (evt) => {
    emit({ event: "connection:close", peer: evt.detail.remotePeer.toString() });
  });
  libp2p.addEventListener("peer:identify", (evt) => {
    const d = evt.detail;
    emit({
      event: "identify",
      peer: d.peerId.toString(),
      agent: d.agentVersion,
      protocols: d.protocols,
    });
  });
}

export function connectionsTo(libp2p, peer) {
  return libp2p.getConnections().filter((c) => c.remotePeer.toString() === peer);
}

// Answers once `peer` is in (present=true) or out of (present=false) our mesh for `pubsubTopic`,
// rechecked after every heartbeat, GRAFT and PRUNE: event-driven, so tests need no polling.
const MESH_EVENTS = ["gossipsub:heartbeat", "gossipsub:graft", "gossipsub:prune"];
export function waitMesh(pubsub, { pubsubTopic, peer, present = true }) {
  const settled = () => pubsub.getMeshPeers(pubsubTopic).map(String).includes(peer) === present;
  if (settled()) return Promise.resolve({});
  return new Promise((resolve) => {
    const check = () => {
      if (!settled()) return;
      for (const name of MESH_EVENTS) pubsub.removeEventListener(name, check);
      resolve({});
    };
    for (const name of MESH_EVENTS) pubsub.addEventListener(name, check);
  });
}
