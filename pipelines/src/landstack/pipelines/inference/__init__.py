"""landstack.pipelines.inference: running models on feature batches for the predict step.

`client.InferenceClient` talks to landstack model servers (open inference protocol v2, binary REST
or gRPC); the generated `predict_v2_pb2` holds the protocol's gRPC messages (from
`predict_v2.proto`; regenerate with ``python -m grpc_tools.protoc -I. --python_out=.
--pyi_out=. predict_v2.proto`` in this folder). Nothing is imported here, so importing one module
does not load the others.
"""
