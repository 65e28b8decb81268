// Stack B: libp2p 2.x with @chainsafe/libp2p-gossipsub 14 configured as @waku/relay configures it
// (codec /vac/waku/relay/2.0.0, message id sha256(data), StrictNoSign, no floodsub fallback,
// WakuMessage topic validator), plus a Waku metadata server/client. Needs the polyfill on Node 20.
// Usage: node --import ../common/polyfill.mjs node.mjs '{"muxer": "mplex"|"yamux", "clusterId": 42, "shards": [0, 1]}'
import { createHash } from "node:crypto";

import { gossipsub } from "@chainsafe/libp2p-gossipsub";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { identify } from "@libp2p/identify";
import { mplex } from "@libp2p/mplex";
import { ping } from "@libp2p/ping";
import { tcp } from "@libp2p/tcp";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p } from "libp2p";

import {
  config,
  connectionsTo,
  emit,
  reportConnections,
  serveCommands,
  waitMesh,
} from "../common/lines.mjs";
import {
  decodeMetadata,
  decodeWakuMessage,
  encodeMetadata,
  encodeWakuMessage,
  lengthPrefixed,
  readFrame,
} from "../common/wakumsg.mjs";

const RELAY = "/vac/waku/relay/2.0.0";
const METADATA = "/vac/waku/metadata/1.0.0";
const cfg = config();
const clusterId = cfg.clusterId ?? 42;
const shards = cfg.shards ?? [0, 1];

function wakuRelay(components) {
  const pubsub = gossipsub({
    msgIdFn: (msg) => createHash("sha256").update(msg.data).digest(),
    globalSignaturePolicy: "StrictNoSign",
    fallbackToFloodsub: false,
    multicodecs: [RELAY],
    allowPublishToZeroTopicPeers: false,
  })(components);
  pubsub.multicodecs = [RELAY];
  return pubsub;
}

const node = await createLibp2p({
  addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
  transports: [tcp()],
  streamMuxers: [cfg.muxer === "yamux" ? yamux() : mplex()],
  connectionEncrypters: [noise()],
  services: {
    identify: identify({ agentVersion: "js-libp2p-gossipsub14-harness" }),
    ping: ping(),
    pubsub: wakuRelay,
  },
});
reportConnections(node);

// Metadata server: answer with our cluster/shards, like every Waku node does.
await node.handle(METADATA, async ({ stream }) => {
  try {
    await readFrame(stream.source);
    await stream.sink([lengthPrefixed(encodeMetadata(clusterId, shards))]);
  } catch (err) {
    stream.abort(err);
  }
});

const received = new Map();
node.services.pubsub.addEventListener("message", (evt) => {
  const { topic, data } = evt.detail;
  let decoded;
  try {
    decoded = decodeWakuMessage(data);
  } catch {
    return;
  }
  const key = `${topic} ${decoded.contentTopic}`;
  received.set(key, (received.get(key) ?? 0) + 1);
  emit({
    event: "message",
    pubsubTopic: topic,
    contentTopic: decoded.contentTopic,
    payload: new TextDecoder().decode(decoded.payload),
    signed: evt.detail.type === "signed",
  });
});

const topicOf = (shard) => `/waku/2/rs/${clusterId}/${shard}`;

serveCommands({
  async dial({ addr }) {
    const conn = await node.dial(multiaddr(addr));
    return { peer: conn.remotePeer.toString(), muxer: conn.multiplexer };
  },
  async hangUp({ peer }) {
    for (const c of connectionsTo(node, peer)) await c.close();
    return {};
  },
  async peers() {
    return { peers: node.getConnections().map((c) => c.remotePeer.toString()) };
  },
  async metadata({ peer }) {
    const [conn] = connectionsTo(node, peer);
    if (!conn) throw new Error(`not connected to ${peer}`);
    const stream = await conn.newStream(METADATA);
    await stream.sink([lengthPrefixed(encodeMetadata(clusterId, shards))]);
    const info = decodeMetadata(await readFrame(stream.source));
    await stream.close();
    return info;
  },
  async subscribe({ shard }) {
    const topic = topicOf(shard);
    node.services.pubsub.topicValidators.set(topic, (_peer, msg) => {
      try {
        decodeWakuMessage(msg.data);
        return "accept";
      } catch {
        return "reject";
      }
    });
    node.services.pubsub.subscribe(topic);
    return { pubsubTopic: topic };
  },
  async meshPeers({ pubsubTopic }) {
    return { peers: node.services.pubsub.getMeshPeers(pubsubTopic).map(String) };
  },
  async waitMesh(args) {
    return waitMesh(node.services.pubsub, args);
  },
  async publish({ contentTopic, shard, count = 1, prefix = "js" }) {
    const topic = topicOf(shard);
    let sent = 0;
    const failures = [];
    for (let i = 0; i < count; i++) {
      const data = encodeWakuMessage({
        payload: new TextEncoder().encode(`${prefix}-${i}`),
        contentTopic,
        timestampNs: BigInt(Date.now()) * 1000000n + BigInt(i),
      });
      try {
        const res = await node.services.pubsub.publish(topic, data);
        if (res.recipients.length > 0) sent++;
        else failures.push("no recipients");
      } catch (err) {
        failures.push(String(err));
      }
    }
    return { sent, failures: failures.slice(0, 5) };
  },
  // Publish `hex` verbatim as the message data (e.g. a WakuMessage signed in Python).
  async publishRaw({ shard, hex }) {
    const res = await node.services.pubsub.publish(topicOf(shard), Buffer.from(hex, "hex"));
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

emit({ event: "ready", peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) });
