"""Peer exchange messages and their codec.

One PeerExchangeRPC each way: the request carries `query.num_peers`, the response
`response.peer_infos` (binary ENRs) and nwaku's `status_code`/`status_desc`. Our responses
also carry an empty query, since nwaku's decoder requires field 1; js-waku 0.0.36 ignores the
status fields and reads only the records.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from chat.waku.enr.record import MAX_RECORD_SIZE
from chat.waku.proto import peer_exchange_pb2
from chat.waku.protowire import optional, parse, require

PROTOCOL = "/vac/waku/peer-exchange/2.0.0-alpha1"
MAX_PEERS_PER_ANSWER = 50
"""The most records our server puts in one answer, whatever was asked (nwaku: 60)."""
MAX_REQUEST_FRAME = 1024
"""A request is a few bytes; anything much larger is not one."""
RECORD_OVERHEAD = 8
"""Protobuf bytes around one record: two tags and two lengths."""
RESPONSE_SLACK = 512
"""Room for the query, the status and its description."""


def max_response_frame(num_peers: int) -> int:
    """The largest answer to a request for `num_peers` records worth reading."""
    return num_peers * (MAX_RECORD_SIZE + RECORD_OVERHEAD) + RESPONSE_SLACK


class PxStatus(IntEnum):
    SUCCESS = 200
    BAD_REQUEST = 400
    TOO_MANY_REQUESTS = 429
    SERVICE_UNAVAILABLE = 503


class PxWireError(ValueError):
    """Bytes that are not a peer exchange message."""


@dataclass(frozen=True, slots=True)
class PeerExchangeRequest:
    num_peers: int

    def encode(self) -> bytes:
        rpc = peer_exchange_pb2.PeerExchangeRPC()
        rpc.query.num_peers = self.num_peers
        return rpc.SerializeToString()

    @classmethod
    def decode(cls, data: bytes) -> PeerExchangeRequest:
        rpc = parse(peer_exchange_pb2.PeerExchangeRPC, data, PxWireError, "a peer exchange RPC")
        require(rpc, "query", PxWireError)
        return cls(num_peers=rpc.query.num_peers)


@dataclass(frozen=True, slots=True)
class PeerExchangeResponse:
    records: tuple[bytes, ...]
    """Binary ENRs, as sent: not yet checked."""
    status_code: int | None = PxStatus.SUCCESS
    status_desc: str | None = None

    def encode(self) -> bytes:
        rpc = peer_exchange_pb2.PeerExchangeRPC()
        rpc.query.num_peers = 0
        response = rpc.response
        for record in self.records:
            response.peer_infos.add(enr=record)
        if self.status_code is not None:
            response.status_code = self.status_code
        if self.status_desc is not None:
            response.status_desc = self.status_desc
        return rpc.SerializeToString()

    @classmethod
    def decode(cls, data: bytes, max_records: int = MAX_PEERS_PER_ANSWER) -> PeerExchangeResponse:
        """PxWireError when it is malformed or holds more than `max_records` records (a
        record of the wrong size is the client's check: it is counted, not fatal)."""
        rpc = parse(peer_exchange_pb2.PeerExchangeRPC, data, PxWireError, "a peer exchange RPC")
        require(rpc, "response", PxWireError)
        response = rpc.response
        if len(response.peer_infos) > max_records:
            raise PxWireError(
                f"the answer holds {len(response.peer_infos)} records, more than {max_records}"
            )
        return cls(
            records=tuple(info.enr for info in response.peer_infos),
            status_code=optional(response, "status_code"),
            status_desc=optional(response, "status_desc"),
        )

    @property
    def succeeded(self) -> bool:
        """nwaku: no status means success only when records came."""
        if self.status_code is None:
            return bool(self.records)
        return self.status_code == PxStatus.SUCCESS
