// A line-oriented oracle around the real @waku/sds package, driven by chinwag's tests.
// Each stdin line is a JSON command; each answer is one JSON line on stdout.
import { createInterface } from "node:readline";
import { Message, MessageChannel, MessageChannelEvent } from "@waku/sds";
// DefaultBloomFilter (the hashN the channel uses) is not exported; load it by file path.
import { DefaultBloomFilter } from "./node_modules/@waku/sds/dist/bloom_filter/bloom.js";

const hex = (bytes) => Buffer.from(bytes ?? []).toString("hex");
const unhex = (s) => new Uint8Array(Buffer.from(s, "hex"));

let channel = null;
let events = [];

function openChannel({ channelId, senderId, causalHistorySize }) {
  channel = new MessageChannel(channelId, senderId, {
    causalHistorySize: causalHistorySize ?? 200,
    enableRepair: false,
  });
  events = [];
  const record = (name, detail) => events.push({ name, detail });
  channel.addEventListener(MessageChannelEvent.InMessageDelivered, (e) =>
    record("delivered", e.detail));
  channel.addEventListener(MessageChannelEvent.OutMessageAcknowledged, (e) =>
    record("acknowledged", e.detail));
  channel.addEventListener(MessageChannelEvent.OutMessagePossiblyAcknowledged, (e) =>
    record("possibly_acknowledged", e.detail.messageId));
  channel.addEventListener(MessageChannelEvent.InMessageMissing, (e) =>
    record("missing", e.detail.map((h) => h.messageId)));
  return {};
}

async function send({ text }) {
  let sent = null;
  channel.pushOutgoingMessage(new TextEncoder().encode(text), async (msg) => {
    sent = msg;
    return { success: true };
  });
  await channel.processTasks();
  return { hex: hex(sent.encode()), messageId: sent.messageId };
}

async function receive({ hex: h }) {
  const msg = Message.decode(unhex(h));
  if (!msg) return { error: "decode failed" };
  channel.pushIncomingMessage(msg, undefined);
  await channel.processTasks();
  const out = events;
  events = [];
  return { events: out };
}

// @waku/sds delivers buffered messages only when the incoming buffer is swept.
function sweep() {
  const missing = channel.sweepIncomingBuffer().map((h) => h.messageId);
  const out = events;
  events = [];
  return { events: out, missing };
}

function encode(f) {
  const msg = new Message(
    f.messageId,
    f.channelId,
    f.senderId,
    f.causalHistory.map((h) =>
      h.retrievalHint ? { messageId: h.messageId, retrievalHint: unhex(h.retrievalHint) }
                      : { messageId: h.messageId }),
    f.lamport === null ? undefined : BigInt(f.lamport),
    f.bloom ? unhex(f.bloom) : undefined,
    f.content ? unhex(f.content) : undefined,
  );
  return { hex: hex(msg.encode()) };
}

function decode({ hex: h }) {
  const m = Message.decode(unhex(h));
  if (!m) return { error: "decode failed" };
  return {
    messageId: m.messageId,
    channelId: m.channelId,
    senderId: m.senderId,
    lamport: m.lamportTimestamp === undefined ? null : m.lamportTimestamp.toString(),
    causalHistory: m.causalHistory.map((e) => [e.messageId, hex(e.retrievalHint)]),
    bloom: hex(m.bloomFilter),
    content: hex(m.content),
  };
}

function bloom({ capacity, errorRate, ids }) {
  const filter = new DefaultBloomFilter({ capacity, errorRate });
  for (const id of ids) filter.insert(id);
  return { hex: hex(filter.toBytes()), kHashes: filter.kHashes, totalBits: filter.totalBits };
}

const handlers = { open: openChannel, send, receive, sweep, encode, decode, bloom,
  messageId: ({ text }) => ({ id: MessageChannel.getMessageId(new TextEncoder().encode(text)) }) };

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  const cmd = JSON.parse(line);
  try {
    const answer = await handlers[cmd.op](cmd);
    process.stdout.write(JSON.stringify({ ok: true, ...answer }) + "\n");
  } catch (err) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(err) }) + "\n");
  }
}
