// A js-waku light node (@waku/sdk 0.0.36 createLightNode, libp2p 2.8) driven over JSON lines:
// light push, filter and store against a chinwag service node; with "peerExchange": true also
// js-waku's own peer exchange discovery, reporting each peer it learns ("discovered" events).
// Usage: node node.mjs '{"muxer": "mplex"|"yamux", "clusterId": 42, "peerExchange": false}'
import { yamux } from "@chainsafe/libp2p-yamux";
import { mplex } from "@libp2p/mplex";
import { tcp } from "@libp2p/tcp";
import { webSockets } from "@libp2p/websockets";
import { all as allAddrs } from "@libp2p/websockets/filters";
import { multiaddr } from "@multiformats/multiaddr";
import {
  bytesToUtf8,
  createDecoder,
  createEncoder,
  createLightNode,
  Protocols,
  utf8ToBytes,
  utils,
} from "@waku/sdk";

import { config, connectionsTo, emit, reportConnections, serveCommands } from "../common/lines.mjs";

const cfg = config();
const clusterId = cfg.clusterId ?? 42;
const networkConfig = { clusterId };

// Peer exchange only: no DNS discovery or peer cache (they would reach the internet).
const discovery = cfg.peerExchange ? { peerExchange: true, dns: false, peerCache: false } : {};
const waku = await createLightNode({
  networkConfig,
  discovery,
  libp2p: {
    addresses: { listen: [] },
    // TCP for the tests, plus js-waku's default WebSocket transport (unfiltered: ws:// on
    // 127.0.0.1 is not a browser-dialable address, so the default filter would drop it).
    transports: [tcp(), webSockets({ filter: allAddrs })],
    streamMuxers: [cfg.muxer === "yamux" ? yamux() : mplex()],
    connectionManager: { minConnections: 0 },
  },
});
reportConnections(waku.libp2p);

// Peers js-waku learned (through peer exchange: from the ENRs our node sent), by peer id.
const discovered = new Map();
waku.libp2p.addEventListener("peer:discovery", (evt) => {
  const { id, multiaddrs } = evt.detail;
  discovered.set(id.toString(), id);
  emit({ event: "discovered", peer: id.toString(), addrs: multiaddrs.map(String) });
});

const routing = (shard) => utils.StaticShardingRoutingInfo.fromShard(shard, networkConfig);
const hex = (bytes) => Buffer.from(bytes).toString("hex");
const fromHex = (text) => Uint8Array.from(Buffer.from(text, "hex"));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// What the tests compare: our own hash of the decoded message (so hashing is checked too).
function describe(msg) {
  return {
    hash: hex(msg.hash),
    pubsubTopic: msg.pubsubTopic,
    contentTopic: msg.contentTopic,
    payload: bytesToUtf8(msg.payload),
    timestampNs: String(msg.proto?.timestamp ?? ""),
  };
}

function remotePeer(peer) {
  const [conn] = connectionsTo(waku.libp2p, peer);
  if (!conn) throw new Error(`not connected to ${peer}`);
  return conn.remotePeer;
}

const PROTOCOLS = {
  lightpush: Protocols.LightPush,
  filter: Protocols.Filter,
  store: Protocols.Store,
};
const filterDecoders = new Map();

serveCommands({
  async dial({ addr }) {
    const conn = await waku.libp2p.dial(multiaddr(addr));
    return { peer: conn.remotePeer.toString(), muxer: conn.multiplexer };
  },
  // Dial a discovered peer by its id alone: libp2p takes the addresses from its peer store,
  // where peer exchange put what the peer's ENR says.
  async dialDiscovered({ peer }) {
    const id = discovered.get(peer);
    if (!id) throw new Error(`${peer} was not discovered`);
    const conn = await waku.libp2p.dial(id);
    return { peer: conn.remotePeer.toString(), addr: conn.remoteAddr.toString() };
  },
  // Until the sdk's peer manager would pick `peer` for every protocol on the shard: identify
  // and the metadata handshake are done. js-waku's own waitForPeers returns too early.
  async waitUsable({ peer, shard, protocols = Object.keys(PROTOCOLS), timeoutMs = 20000 }) {
    const pubsubTopic = routing(shard).pubsubTopic;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const missing = [];
      for (const name of protocols) {
        const peers = await waku.peerManager.getPeers({ protocol: PROTOCOLS[name], pubsubTopic });
        if (!peers.some((p) => p.toString() === peer)) missing.push(name);
      }
      if (missing.length === 0) return {};
      if (Date.now() > deadline) throw new Error(`peer not usable for ${missing}`);
      await sleep(50);
    }
  },
  async lightPushSend({ contentTopic, shard, payload, useLegacy = false }) {
    const encoder = createEncoder({ contentTopic, routingInfo: routing(shard) });
    const res = await waku.lightPush.send(
      encoder,
      { payload: utf8ToBytes(payload) },
      { autoRetry: false, useLegacy },
    );
    return {
      successes: res.successes.map(String),
      failures: res.failures.map((f) => ({ error: String(f.error), peer: String(f.peerId ?? "") })),
    };
  },
  async filterSubscribe({ contentTopics, shard }) {
    const decoders = contentTopics.map((topic) => {
      const decoder = createDecoder(topic, routing(shard));
      filterDecoders.set(topic, decoder);
      return decoder;
    });
    const subscribed = await waku.filter.subscribe(decoders, (msg) =>
      emit({ event: "filterMessage", ...describe(msg) }),
    );
    return { subscribed };
  },
  async filterUnsubscribe({ contentTopics }) {
    const decoders = contentTopics.map((topic) => filterDecoders.get(topic));
    if (decoders.some((d) => !d)) throw new Error("unsubscribe from a topic never subscribed");
    return { unsubscribed: await waku.filter.unsubscribe(decoders) };
  },
  // One filter ping straight through the protocol (the sdk pings every 60 s on its own).
  async filterPing({ peer }) {
    const res = await waku.filter.protocol.ping(remotePeer(peer));
    return { success: Boolean(res.success), error: res.failure ? String(res.failure.error) : "" };
  },
  // A store query through the sdk's own pagination; returns every page it yielded.
  async storeQuery({
    shard,
    contentTopics,
    timeStartMs,
    timeEndMs,
    hashes,
    forward = true,
    pageSize,
    includeData = true,
  }) {
    const decoders = contentTopics.map((topic) => createDecoder(topic, routing(shard)));
    const options = { paginationForward: forward, includeData };
    if (pageSize !== undefined) options.paginationLimit = pageSize;
    if (timeStartMs !== undefined) options.timeStart = new Date(timeStartMs);
    if (timeEndMs !== undefined) options.timeEnd = new Date(timeEndMs);
    if (hashes !== undefined) options.messageHashes = hashes.map(fromHex);
    const pages = [];
    for await (const page of waku.store.queryGenerator(decoders, options)) {
      const messages = await Promise.all(page);
      pages.push(messages.map((m) => (m ? describe(m) : null)));
    }
    return { pages };
  },
  // The streams js keeps open to `peer` (js-waku opens some eagerly on identify).
  async streams({ peer }) {
    return {
      streams: connectionsTo(waku.libp2p, peer).flatMap((c) =>
        c.streams.map((s) => ({
          protocol: s.protocol,
          direction: s.direction,
          status: s.status,
          writeStatus: s.writeStatus,
          readStatus: s.readStatus,
        })),
      ),
    };
  },
  // Until js holds no usable stream for these protocols to `peer` (one the sdk would reuse).
  async waitStreamsGone({ peer, protocols, timeoutMs = 10000 }) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = connectionsTo(waku.libp2p, peer).flatMap((c) =>
        c.streams.filter(
          (s) => protocols.includes(s.protocol) && !["closed", "closing"].includes(s.writeStatus),
        ),
      );
      if (left.length === 0) return {};
      if (Date.now() > deadline) {
        throw new Error(`streams still usable: ${left.map((s) => s.protocol)}`);
      }
      await sleep(20);
    }
  },
  async stop() {
    await waku.stop();
    return {};
  },
});

emit({
  event: "ready",
  peerId: waku.libp2p.peerId.toString(),
  addrs: waku.libp2p.getMultiaddrs().map(String),
});
