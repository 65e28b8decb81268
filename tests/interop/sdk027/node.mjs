// Stack A: the real js-waku relay node (@waku/sdk 0.0.27 createRelayNode, libp2p 1.x) over TCP.
// Usage: node node.mjs '{"muxer": "mplex"|"yamux", "clusterId": 42, "shards": [0, 1]}'
import { yamux } from "@chainsafe/libp2p-yamux";
import { mplex } from "@libp2p/mplex";
import { tcp } from "@libp2p/tcp";
import { webSockets } from "@libp2p/websockets";
import { all as allAddrs } from "@libp2p/websockets/filters";
import { multiaddr } from "@multiformats/multiaddr";
import { bytesToUtf8, createDecoder, createEncoder, utf8ToBytes, utils } from "@waku/sdk";
import { createRelayNode } from "@waku/sdk/relay";

import {
  config,
  connectionsTo,
  emit,
  reportConnections,
  serveCommands,
  waitMesh,
} from "../common/lines.mjs";

const cfg = config();
const clusterId = cfg.clusterId ?? 42;
const shards = cfg.shards ?? [0, 1];

const node = await createRelayNode({
  networkConfig: { clusterId, shards },
  libp2p: {
    addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
    // WebSockets too (js-waku's default transport), unfiltered so ws:// on 127.0.0.1 is allowed.
    transports: [tcp(), webSockets({ filter: allAddrs })],
    streamMuxers: [cfg.muxer === "yamux" ? yamux() : mplex()],
    connectionManager: { minConnections: 0 },
  },
});
reportConnections(node.libp2p);
await node.start();

const shardInfo = (shard) => ({ clusterId, shard });
const received = new Map();

serveCommands({
  async dial({ addr }) {
    const conn = await node.libp2p.dial(multiaddr(addr));
    return { peer: conn.remotePeer.toString(), muxer: conn.multiplexer };
  },
  async hangUp({ peer }) {
    for (const c of connectionsTo(node.libp2p, peer)) await c.close();
    return {};
  },
  async peers() {
    return { peers: node.libp2p.getConnections().map((c) => c.remotePeer.toString()) };
  },
  // Ask the peer for its shard info over /vac/waku/metadata/1.0.0 (js as the client).
  async metadata({ peer }) {
    const [conn] = connectionsTo(node.libp2p, peer);
    if (!conn) throw new Error(`not connected to ${peer}`);
    const { shardInfo, error } = await node.libp2p.services.metadata.query(conn.remotePeer);
    if (error) throw new Error(`metadata query failed: ${error}`);
    return { clusterId: shardInfo.clusterId, shards: shardInfo.shards };
  },
  async subscribe({ contentTopic, shard }) {
    const decoder = createDecoder(contentTopic, shardInfo(shard));
    await node.relay.subscribe([decoder], (msg) => {
      const key = `${msg.pubsubTopic} ${msg.contentTopic}`;
      received.set(key, (received.get(key) ?? 0) + 1);
      emit({
        event: "message",
        pubsubTopic: msg.pubsubTopic,
        contentTopic: msg.contentTopic,
        payload: bytesToUtf8(msg.payload),
      });
    });
    return {};
  },
  async meshPeers({ pubsubTopic }) {
    return { peers: node.relay.getMeshPeers(pubsubTopic).map(String) };
  },
  async waitMesh(args) {
    return waitMesh(node.libp2p.services.pubsub, args);
  },
  async publish({ contentTopic, shard, count = 1, prefix = "js" }) {
    const encoder = createEncoder({ contentTopic, pubsubTopicShardInfo: shardInfo(shard) });
    let sent = 0;
    const failures = [];
    for (let i = 0; i < count; i++) {
      const res = await node.relay.send(encoder, { payload: utf8ToBytes(`${prefix}-${i}`) });
      if (res.successes.length > 0) sent++;
      else failures.push(String(res.failures?.[0]?.error ?? "no peers"));
    }
    return { sent, failures: failures.slice(0, 5) };
  },
  // Publish `hex` verbatim through js-waku's own gossipsub (no js-waku encoder on the way).
  async publishRaw({ shard, hex }) {
    const topic = `/waku/2/rs/${clusterId}/${shard}`;
    const res = await node.libp2p.services.pubsub.publish(topic, Buffer.from(hex, "hex"));
    return { recipients: res.recipients.length };
  },
  async received() {
    return { received: Object.fromEntries(received) };
  },
  async stop() {
    await node.stop();
    return {};
  },
});

emit({
  event: "ready",
  peerId: node.libp2p.peerId.toString(),
  addrs: node.libp2p.getMultiaddrs().map(String),
});
