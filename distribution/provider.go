// Package distribution holds what ships with otelcol-vigil besides the
// components: the default configuration (config.yaml beside this file), and
// the confmap provider that serves it from inside the binary, so that
//
//	otelcol-vigil --config vigil:default
//
// runs with no configuration file on disk. builder-config.yaml lists this
// package under `providers`; ocb calls NewFactory.
package distribution // import "github.com/vigilsec/vigil/distribution"

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/confmap"
)

// Scheme is the URI scheme of the embedded configurations.
const Scheme = "vigil"

// DefaultURI names the default configuration, distribution/config.yaml.
const DefaultURI = Scheme + ":default"

//go:embed config.yaml
var defaultConfig []byte

// configs maps the opaque part of a vigil: URI to the YAML it serves.
var configs = map[string][]byte{
	"default": defaultConfig,
}

var errUnknownConfig = errors.New("no such embedded configuration")

// DefaultConfig returns a copy of the default configuration's YAML, before
// expansion of its ${env:...} references.
func DefaultConfig() []byte {
	return slices.Clone(defaultConfig)
}

// NewFactory returns the factory of the provider that serves Vigil's
// embedded configurations under the vigil: scheme (vigil:default).
func NewFactory() confmap.ProviderFactory {
	return confmap.NewProviderFactory(func(confmap.ProviderSettings) confmap.Provider {
		return provider{}
	})
}

type provider struct{}

// Retrieve returns the embedded configuration that uri names. The
// configurations are part of the binary and never change, so watcher is
// never called.
func (provider) Retrieve(_ context.Context, uri string, _ confmap.WatcherFunc) (*confmap.Retrieved, error) {
	name, ok := strings.CutPrefix(uri, Scheme+":")
	if !ok {
		return nil, fmt.Errorf("%q uri is not supported by the %q provider", uri, Scheme)
	}
	yaml, ok := configs[name]
	if !ok {
		known := slices.Sorted(maps.Keys(configs))
		return nil, fmt.Errorf("%q: %w (known: %s:%s)", uri, errUnknownConfig, Scheme, strings.Join(known, ", "+Scheme+":"))
	}
	return confmap.NewRetrievedFromYAML(yaml)
}

func (provider) Scheme() string { return Scheme }

func (provider) Shutdown(context.Context) error { return nil }
