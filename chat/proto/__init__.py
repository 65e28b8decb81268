"""chinwag's own payload formats (protobuf). Generated *_pb2 modules sit beside the .proto files."""
