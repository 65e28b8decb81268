// Relay bench node: libp2p 2.x + @chainsafe/libp2p-gossipsub 14 configured as @waku/relay
// configures it (codec /vac/waku/relay/2.0.0, message id sha256(data), StrictNoSign, no floodsub
// fallback, D 6/4/8, 1 s heartbeat, WakuMessage topic validator), over TCP + Noise + yamux.
// Speaks the bench line protocol of tests/bench/nodes/lineproto.py: one JSON command per stdin
// line ({"op": "connect", ...}), one JSON answer per stdout line, after a first
// {"event": "ready", "addrs": [...]} line. Needs the polyfill on Node 20:
//   node --import ../common/polyfill.mjs bench_node.mjs
import { createHash } from "node:crypto";
import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";

import { gossipsub } from "@chainsafe/libp2p-gossipsub";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { identify } from "@libp2p/identify";
import { tcp } from "@libp2p/tcp";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p } from "libp2p";

import { decodeWakuMessage, encodeWakuMessage } from "../common/wakumsg.mjs";

const RELAY = "/vac/waku/relay/2.0.0";
const CONTENT_TOPIC = "/bench/1/relay/proto";

function wakuRelay(components) {
  const pubsub = gossipsub({
    msgIdFn: (msg) => createHash("sha256").update(msg.data).digest(),
    globalSignaturePolicy: "StrictNoSign",
    fallbackToFloodsub: false,
    multicodecs: [RELAY],
    D: 6,
    Dlo: 4,
    Dhi: 8,
    heartbeatInterval: 1000,
  })(components);
  pubsub.multicodecs = [RELAY];
  return pubsub;
}

const node = await createLibp2p({
  addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
  transports: [tcp()],
  streamMuxers: [yamux()],
  connectionEncrypters: [noise()],
  services: {
    identify: identify({ agentVersion: "js-libp2p-gossipsub14-bench" }),
    pubsub: wakuRelay,
  },
});
const pubsub = node.services.pubsub;

// Wall-clock nanoseconds with sub-millisecond resolution, comparable to Python's time.time_ns().
const nowNs = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));

// Counted drops: RPCs gossipsub could not hand to a peer's outbound stream (sendRpc refused:
// no stream, or its buffer full). Relayed: copies of received messages forwarded to peers.
let drops = 0;
let relayed = 0;
const sendRpc = pubsub.sendRpc.bind(pubsub);
pubsub.sendRpc = (id, rpc) => {
  const sent = sendRpc(id, rpc);
  if (!sent && rpc.messages?.length) drops += rpc.messages.length;
  return sent;
};
const selectPeersToForward = pubsub.selectPeersToForward.bind(pubsub);
pubsub.selectPeersToForward = (...args) => {
  const peers = selectPeersToForward(...args);
  relayed += peers.size;
  return peers;
};

class Receiver {
  constructor() {
    this.latenciesMs = [];
    this.seqs = new Set();
    this.firstNs = 0n;
    this.lastNs = 0n;
  }

  record(payload) {
    const now = nowNs();
    if (payload.length < 12) return;
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    const sent = view.getBigUint64(0);
    const seq = view.getUint32(8);
    if (this.seqs.has(seq)) return;
    this.seqs.add(seq);
    this.latenciesMs.push(Number(now - sent) / 1e6);
    if (this.firstNs === 0n) this.firstNs = now;
    this.lastNs = now;
  }

  stats() {
    const lat = [...this.latenciesMs].sort((a, b) => a - b);
    const n = lat.length;
    let p50 = null;
    if (n) p50 = n % 2 ? lat[(n - 1) / 2] : (lat[n / 2 - 1] + lat[n / 2]) / 2;
    return {
      received: this.seqs.size,
      first_ns: Number(this.firstNs),
      last_ns: Number(this.lastNs),
      p50_ms: p50,
      p99_ms: n ? lat[Math.min(n - 1, Math.floor(n * 0.99))] : null,
    };
  }
}

let receiver = new Receiver();
pubsub.addEventListener("message", (evt) => {
  try {
    receiver.record(decodeWakuMessage(evt.detail.data).payload);
  } catch {
    // not a WakuMessage: the topic validator already rejected it
  }
});

function makePayload(seq, size) {
  const payload = new Uint8Array(Math.max(12, size));
  const view = new DataView(payload.buffer);
  view.setBigUint64(0, nowNs());
  view.setUint32(8, seq);
  return payload;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const yieldToLoop = () => new Promise((resolve) => setImmediate(resolve));

const handlers = {
  async connect({ addr }) {
    await node.dial(multiaddr(addr));
    return { ok: true };
  },
  async subscribe({ topic }) {
    pubsub.topicValidators.set(topic, (_peer, msg) => {
      try {
        decodeWakuMessage(msg.data);
        return "accept";
      } catch {
        return "reject";
      }
    });
    pubsub.subscribe(topic);
    return { ok: true };
  },
  async wait_mesh({ topic, min, timeout = 20 }) {
    const deadline = Date.now() + timeout * 1000;
    while (pubsub.getMeshPeers(topic).length < min && Date.now() < deadline) await sleep(50);
    return { ok: true, mesh: pubsub.getMeshPeers(topic).length };
  },
  async publish({ topic, count, rate, size, seq_base: seqBase = 0 }) {
    const interval = rate ? 1000 / rate : 0;
    const start = performance.now();
    let reached = 0;
    for (let seq = 0; seq < count; seq++) {
      if (interval) await sleep(start + seq * interval - performance.now());
      const data = encodeWakuMessage({
        payload: makePayload(seqBase + seq, size),
        contentTopic: CONTENT_TOPIC,
        timestampNs: nowNs(),
      });
      try {
        reached += (await pubsub.publish(topic, data)).recipients.length;
      } catch {
        drops += 1; // no peer took it
      }
      if (!interval) await yieldToLoop(); // let the streams drain, like the Python nodes do
    }
    return { ok: true, sent: count, reached };
  },
  async stats() {
    const cpu = process.cpuUsage();
    return {
      ...receiver.stats(),
      cpu_s: (cpu.user + cpu.system) / 1e6,
      rss_mb: process.resourceUsage().maxRSS / 1024,
      drops,
      relayed,
    };
  },
  async reset() {
    receiver = new Receiver();
    drops = 0;
    relayed = 0;
    return { ok: true };
  },
};

function answer(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

answer({ event: "ready", addrs: node.getMultiaddrs().map(String) });

// Commands run one at a time, in order, like the Python nodes.
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const cmd = JSON.parse(line);
  if (cmd.op === "quit") {
    answer({ ok: true });
    break;
  }
  const handler = handlers[cmd.op];
  try {
    answer(handler ? await handler(cmd) : { ok: false, error: `unknown op ${cmd.op}` });
  } catch (err) {
    answer({ ok: false, error: String(err?.stack ?? err) });
  }
}
await node.stop();
process.exit(0);
