"""chinwag's own payload formats (protobuf): sds.proto (SDS frames), direct.proto (the 1:1
envelope and payloads), contact.proto (contact links). Generated *_pb2 modules sit beside the
.proto files (scripts/gen_proto.sh)."""
