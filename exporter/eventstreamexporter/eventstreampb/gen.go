// Package eventstreampb holds the gRPC service and messages of the
// event_stream exporter, generated from eventstream.proto. Clients such as
// `vigil events` import it; it carries no collector dependencies.
//
// Regenerate after editing eventstream.proto (protoc from Debian's
// protobuf-compiler, the plugins from the Go module proxy, at the versions
// the generated headers name):
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
//	go generate ./exporter/eventstreamexporter/eventstreampb
package eventstreampb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative eventstream.proto
