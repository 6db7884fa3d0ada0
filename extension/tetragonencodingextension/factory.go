// Package tetragonencodingextension is the `tetragon_encoding` extension: an
// encoding (plog.Marshaler) that writes Vigil's events in Tetragon's JSON
// export format, one GetEventsResponse a line, for the file exporter, Kafka
// and any exporter that takes an encoding. Whatever reads Tetragon's export
// files (tetra getevents, SIEM parsers, jq scripts) reads these.
package tetragonencodingextension

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/vigilsec/vigil/internal/encodingext"
	"github.com/vigilsec/vigil/internal/tetragonjson"

	"github.com/vigilsec/vigil/extension/tetragonencodingextension/internal/metadata"
)

// NewFactory returns the factory of the tetragon_encoding extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, create, metadata.ExtensionStability)
}

func createDefaultConfig() component.Config { return &Config{} }

func create(_ context.Context, set extension.Settings, _ component.Config) (extension.Extension, error) {
	return encodingext.New(set.Logger, tetragonjson.Marshal, "records without a Tetragon event"), nil
}
