// Package falcoencodingextension is the `falco_encoding` extension: an
// encoding (plog.Marshaler) that writes Vigil's detections as Falco's JSON
// alerts, one a line, for the file exporter, Kafka, the webhook exporter
// (which POSTs them to falcosidekick) and any exporter that takes an
// encoding.
package falcoencodingextension

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/vigilsec/vigil/internal/encodingext"
	"github.com/vigilsec/vigil/internal/falcojson"

	"github.com/vigilsec/vigil/extension/falcoencodingextension/internal/metadata"
)

// NewFactory returns the factory of the falco_encoding extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, create, metadata.ExtensionStability)
}

func createDefaultConfig() component.Config { return &Config{} }

func create(_ context.Context, set extension.Settings, _ component.Config) (extension.Extension, error) {
	return encodingext.New(set.Logger, falcojson.Marshal, "records that are not detections"), nil
}
