"""Waku wire messages as protobuf. The .proto files are the source; scripts/gen_proto.sh
generates the *_pb2 modules next to them (committed, excluded from lint and type checks).

Fields that nwaku requires on the wire are declared `optional` (explicit presence) so that
our encoders write them even when they hold the default value.
"""
