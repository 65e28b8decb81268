// Minimal WakuMessage protobuf codec (fields 1 payload, 2 content_topic, 10 timestamp as
// zigzag sint64), for the stack without @waku/proto. No npm dependencies.
const enc = new TextEncoder();
const dec = new TextDecoder();

function varint(n) {
  const out = [];
  let v = BigInt(n);
  while (v >= 0x80n) {
    out.push(Number((v & 0x7fn) | 0x80n));
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

function bytesField(num, bytes) {
  return [...varint((num << 3) | 2), ...varint(bytes.length), ...bytes];
}

export function encodeWakuMessage({ payload, contentTopic, timestampNs }) {
  const ts = BigInt(timestampNs);
  const zigzag = ts >= 0n ? ts << 1n : ((-ts) << 1n) - 1n;
  return Uint8Array.from([
    ...bytesField(1, payload),
    ...bytesField(2, enc.encode(contentTopic)),
    ...varint(10 << 3),
    ...varint(zigzag),
  ]);
}

// Returns {payload, contentTopic} or throws on malformed input (used as the topic validator).
export function decodeWakuMessage(buf) {
  let i = 0;
  const readVarint = () => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (i >= buf.length) throw new Error("truncated varint");
      const b = buf[i++];
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return result;
      shift += 7n;
      if (shift > 63n) throw new Error("varint too long");
    }
  };
  const msg = { payload: new Uint8Array(), contentTopic: undefined };
  while (i < buf.length) {
    const key = Number(readVarint());
    const wire = key & 7;
    const field = key >> 3;
    if (wire === 0) readVarint();
    else if (wire === 2) {
      const len = Number(readVarint());
      if (i + len > buf.length) throw new Error("truncated field");
      const value = buf.subarray(i, i + len);
      i += len;
      if (field === 1) msg.payload = value;
      if (field === 2) msg.contentTopic = dec.decode(value);
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new Error(`bad wire type ${wire}`);
    if (i > buf.length) throw new Error("truncated");
  }
  if (msg.contentTopic === undefined) throw new Error("no content topic");
  return msg;
}

// /vac/waku/metadata/1.0.0 messages, encoded like nwaku (field 2 unpacked, field 3 packed).
export function encodeMetadata(clusterId, shards) {
  const packed = shards.flatMap((s) => varint(s));
  return Uint8Array.from([
    ...varint(1 << 3),
    ...varint(clusterId),
    ...shards.flatMap((s) => [...varint(2 << 3), ...varint(s)]),
    ...(shards.length ? bytesField(3, packed) : []),
  ]);
}

export function decodeMetadata(buf) {
  let i = 0;
  const readVarint = () => {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (i >= buf.length) throw new Error("truncated varint");
      const b = buf[i++];
      result += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return result;
      shift += 7;
    }
  };
  let clusterId = null;
  const v2 = [];
  const v3 = [];
  while (i < buf.length) {
    const key = readVarint();
    const field = key >> 3;
    if ((key & 7) === 0) {
      const v = readVarint();
      if (field === 1) clusterId = v;
      if (field === 2) v2.push(v);
      if (field === 3) v3.push(v);
    } else if ((key & 7) === 2) {
      const len = readVarint();
      const end = i + len;
      while (i < end) (field === 3 ? v3 : v2).push(readVarint());
    } else throw new Error("unexpected wire type");
  }
  return { clusterId, shards: v3.length ? v3 : v2 };
}

export function lengthPrefixed(bytes) {
  return Uint8Array.from([...varint(bytes.length), ...bytes]);
}

// Reads one unsigned-varint length-prefixed frame from an async iterable of chunks.
export async function readFrame(source, max = 1024) {
  let buf = new Uint8Array();
  for await (const chunk of source) {
    const part = chunk.subarray ? chunk.subarray() : chunk;
    const joined = new Uint8Array(buf.length + part.length);
    joined.set(buf);
    joined.set(part, buf.length);
    buf = joined;
    let len = 0;
    let shift = 0;
    let j = 0;
    for (; j < buf.length && j < 10; j++) {
      len += (buf[j] & 0x7f) * 2 ** shift;
      shift += 7;
      if (!(buf[j] & 0x80)) break;
    }
    if (j >= buf.length) continue;
    if (len > max) throw new Error(`frame of ${len} bytes over ${max}`);
    if (buf.length >= j + 1 + len) return buf.subarray(j + 1, j + 1 + len);
  }
  throw new Error("stream ended before a full frame");
}
